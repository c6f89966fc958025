"""Verdicts: one gate's PASS, FAIL or INCONCLUSIVE, with its figures and the reason. Pure.

`evaluate` runs the gate's evaluator on the canary windows and combines its
tests: a gate FAILS on significant harm only (the point estimate strictly
worse than the threshold AND the one-sided test significant), once the canary
has `min_samples`; exactly at the threshold is a pass. Too few samples, no
baseline, or any unusable canary window are INCONCLUSIVE: never a pass.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from reconciler.gates.evaluators import EVALUATORS, Evaluation, Figures, GateInput
from reconciler.gates.pools import Pool, baseline_members
from reconciler.gates.statistics import OneSidedTest
from reconciler.gates.windows import AgentWindow, window_problem
from reconciler.model.fleet import Gate

PROBLEMS_SHOWN = 5  # canary agents' problems named in an inconclusive reason


class Outcome(enum.StrEnum):
    """A gate's answer for a wave."""

    PASS = "pass"  # noqa: S105 (not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One gate's decision with its figures (None where a figure does not exist)."""

    gate: str
    metric: str
    outcome: Outcome
    reason: str
    canary: float | None = None
    baseline: float | None = None
    threshold: float | None = None  # max_ratio x baseline, or the absolute max if lower
    canary_samples: int = 0
    baseline_samples: int = 0
    canary_agents: int = 0
    baseline_agents: int = 0
    baseline_kind: str = ""
    z: float | None = None
    critical: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.PASS

    def detail(self) -> str:
        """The figures in words, for progress lines, the journal and the incident."""
        parts = [f"{self.outcome.value.upper()}: {self.reason}"]
        if self.canary is not None:
            parts.append(f"canary {_text(self.canary)}")
        if self.baseline is not None:
            parts.append(f"baseline {_text(self.baseline)}")
        if self.threshold is not None:
            parts.append(f"threshold {_text(self.threshold)}")
        parts.append(f"samples {self.canary_samples} canary / {self.baseline_samples} baseline")
        if self.baseline_kind:
            parts.append(f"baseline: {self.baseline_kind}")
        if self.z is not None and self.critical is not None:
            parts.append(f"z {self.z:.2f} vs {self.critical:.2f}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, str | int | float | bool | None]:
        return {
            "gate": self.gate,
            "metric": self.metric,
            "outcome": self.outcome.value,
            "ok": self.ok,
            "reason": self.reason,
            "canary": _rounded(self.canary),
            "baseline": _rounded(self.baseline),
            "threshold": _rounded(self.threshold),
            "canary_samples": self.canary_samples,
            "baseline_samples": self.baseline_samples,
            "canary_agents": self.canary_agents,
            "baseline_agents": self.baseline_agents,
            "baseline_kind": self.baseline_kind,
            "z": _rounded(self.z),
            "critical": _rounded(self.critical),
        }


def _text(x: float) -> str:
    return f"{x:.4g}"


def _rounded(x: float | None) -> float | None:
    """Six significant digits for JSON; None for a missing or non-finite figure."""
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def _figure(x: float | None) -> float | None:
    """None for a missing figure or NaN (no value); infinities are kept."""
    return None if x is None or math.isnan(x) else x


def evaluate(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    *,
    problems: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    spread: Sequence[Pool] = (),
) -> GateVerdict:
    """The gate's verdict on the canary windows against their baseline pools.

    `problems`: canary agents whose window could not be had or used, with why;
    any one makes the verdict INCONCLUSIVE (never a pass). `spread`: groups of
    like unchanged agents, to estimate how much agents differ (default: the pools).
    """
    verdict = _inconclusive(gate, canary, pools)
    unusable = _unusable(canary, problems)
    if unusable is not None:
        return replace(verdict, reason=unusable)
    try:
        evaluation = EVALUATORS[gate.metric](GateInput(gate, canary, pools, confidence, spread))
    except (ArithmeticError, ValueError) as exc:  # never a crash, never a pass
        return replace(verdict, reason=f"the figures could not be computed: {exc}")
    verdict = _with_figures(verdict, evaluation.figures, canary)
    return _decide(verdict, gate, evaluation, canary, pools)


def _inconclusive(
    gate: Gate, canary: Sequence[AgentWindow], pools: Mapping[str, Pool]
) -> GateVerdict:
    """The verdict before any figure: INCONCLUSIVE, with the agents and the baseline used."""
    members = baseline_members(pools.values())
    return GateVerdict(
        gate=gate.name,
        metric=gate.metric,
        outcome=Outcome.INCONCLUSIVE,
        reason="",
        canary_agents=len(canary),
        baseline_agents=len(members),
        baseline_kind=", ".join(sorted({p.kind for p in pools.values()})),
        baseline_samples=round(sum(m.tasks for m in members)),
    )


def _unusable(canary: Sequence[AgentWindow], problems: Mapping[str, str] | None) -> str | None:
    """Why the canary cannot be judged at all (None: it can)."""
    if problems:
        first = "; ".join(f"{a}: {why}" for a, why in sorted(problems.items())[:PROBLEMS_SHOWN])
        return f"no usable data from {len(problems)} canary agent(s): {first}"
    if not canary:
        return "no canary agent to judge"
    invalid = next(
        (f"{w.agent}: {why}" for w in canary if (why := window_problem(w, agent=w.agent))), None
    )
    if invalid is not None:
        return f"invalid canary data: {invalid}"
    return None


def _with_figures(
    verdict: GateVerdict, figures: Figures, canary: Sequence[AgentWindow]
) -> GateVerdict:
    """The verdict with the evaluation's figures; the threshold is the lower of ratio and max."""
    samples = figures.samples
    canary_samples = round(samples if samples is not None else sum(w.tasks for w in canary))
    threshold, limit = figures.threshold, figures.limit
    if limit is not None and (threshold is None or limit < threshold):
        threshold = limit
    return replace(
        verdict,
        canary=_figure(figures.canary),
        baseline=_figure(figures.baseline),
        threshold=_figure(threshold),
        canary_samples=canary_samples,
    )


def _decide(
    verdict: GateVerdict,
    gate: Gate,
    evaluation: Evaluation,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
) -> GateVerdict:
    """FAIL on significant harm; else INCONCLUSIVE while samples or a baseline are missing;
    else PASS."""
    failed = _failed(verdict, gate, evaluation)
    if failed is not None:
        return failed
    if verdict.canary_samples < gate.min_samples:
        return replace(
            verdict,
            reason=f"too few samples: {verdict.canary_samples} of the {gate.min_samples} needed",
        )
    waiting = _baseline_missing(verdict, gate, evaluation.ratio_test, canary, pools)
    if waiting is not None:
        return replace(verdict, reason=waiting)
    if gate.max_ratio is None and evaluation.limit_test is None:
        return replace(verdict, reason="the gate sets neither max_ratio nor max")
    shown = evaluation.ratio_test or evaluation.limit_test
    return replace(
        verdict,
        outcome=Outcome.PASS,
        reason="no significant harm",
        z=_figure(shown.z) if shown else None,
        critical=shown.critical if shown else None,
    )


def _failed(verdict: GateVerdict, gate: Gate, evaluation: Evaluation) -> GateVerdict | None:
    """The FAIL verdict of the first significant test (ratio, then max), if any."""
    if verdict.canary_samples < gate.min_samples:
        return None
    ratio, limit = evaluation.ratio_test, evaluation.limit_test
    if ratio is not None and ratio.significant:
        why = f"{gate.metric} significantly above {gate.max_ratio:g} x baseline"
        return _fail(verdict, why, ratio)
    if limit is not None and limit.significant:
        return _fail(verdict, f"{gate.metric} significantly above the limit {gate.max:g}", limit)
    return None


def _fail(verdict: GateVerdict, why: str, test: OneSidedTest) -> GateVerdict:
    return replace(
        verdict, outcome=Outcome.FAIL, reason=why, z=_figure(test.z), critical=test.critical
    )


def _baseline_missing(
    verdict: GateVerdict,
    gate: Gate,
    ratio_test: OneSidedTest | None,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
) -> str | None:
    """Why a ratio gate cannot pass yet for want of a baseline (None: it has one)."""
    if gate.max_ratio is None:
        return None
    if ratio_test is None:
        return (
            "no baseline: no unchanged agent of the same tier with enough samples, "
            "and no window of these agents from before the change"
        )
    missing = [w.agent for w in canary if w.agent not in pools]
    if len(missing) * 2 > len(canary):
        return f"no baseline for {len(missing)} of {len(canary)} agents"
    if verdict.baseline_samples < gate.min_samples:
        return (
            f"too few baseline samples: {verdict.baseline_samples} of the {gate.min_samples} needed"
        )
    return None
