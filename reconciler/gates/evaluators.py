"""Evaluators: one metric's figures and tests for a wave. Pure.

Every evaluator takes a `GateInput` (the gate, the canary windows, their
baseline pools, the confidence, the spread groups) and returns an
`Evaluation`: the figures (canary, baseline, threshold, limit) and up to two
one-sided tests, against `max_ratio` x baseline and against the absolute
`max`. verdict.py turns an evaluation into PASS, FAIL or INCONCLUSIVE.

- error_rate: canary errors against the errors the baseline rates predict for
  the canary's tasks (indirect standardisation), on the log scale, with a
  quasi-Poisson dispersion.
- auth_error_rate: the same test on the tasks refused a credential (the
  reason="auth" share of the errors), e.g. `max: 0.02` while a rotation stages
  a new key; a canary agent that does not export that share is unusable data.
- cost_per_task, tokens_per_task, output_tokens_per_task: canary totals
  against the totals the baseline means predict, with the per-task variance
  estimated from the spread of agents' means.
- latency_p95: the share of canary tasks slower than `max_ratio` x the
  baseline's p95; if the canary's p95 is within the limit that share is at
  most 5%, so the test is one-sided binomial against 5%.
- custom: a per-agent value, the canary agents' mean against the baseline
  agents' mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from reconciler.gates.pools import Pool, PoolKey, baseline_members, distinct_pools
from reconciler.gates.statistics import (
    DEFAULT_REL_VAR,
    P95,
    TAIL,
    OneSidedTest,
    count_above,
    critical_value,
    error_dispersion,
    latency_dispersion,
    quantile,
    relative_variance,
)
from reconciler.gates.windows import MEAN_METRICS, AgentWindow, merge_buckets
from reconciler.model.box import ERROR_REASON_AUTH, LABEL_ERROR_REASON, METRIC_TASK_ERRORS
from reconciler.model.fleet import Gate


@dataclass(frozen=True, slots=True)
class GateInput:
    """What every evaluator reads: one gate, the canary windows and their baselines."""

    gate: Gate
    canary: Sequence[AgentWindow]  # the changed agents' (valid) windows
    pools: Mapping[str, Pool]  # canary agent -> its baseline pool; agents without one absent
    confidence: float  # one-sided
    spread: Sequence[Pool] = ()  # like unchanged agents grouped (empty: use the pools)

    @property
    def canary_tasks(self) -> float:
        return sum(w.tasks for w in self.canary)

    @property
    def matched(self) -> list[AgentWindow]:
        """The canary windows that have a baseline pool."""
        return [w for w in self.canary if w.agent in self.pools]

    def pools_of(self, windows: Iterable[AgentWindow]) -> list[Pool]:
        """The distinct baseline pools of these canary windows."""
        return distinct_pools(self.pools[w.agent] for w in windows)

    def pool_weights(
        self, windows: Sequence[AgentWindow], weight: Callable[[AgentWindow], float]
    ) -> dict[PoolKey, float]:
        """Each distinct pool's summed `weight` over the canary windows it is the baseline of."""
        weights = {p.key: 0.0 for p in self.pools_of(windows)}
        for w in windows:
            weights[self.pools[w.agent].key] += weight(w)
        return weights


@dataclass(frozen=True, slots=True)
class Figures:
    """An evaluation's figures (NaN canary: none; None: the figure does not exist)."""

    canary: float
    baseline: float | None = None
    threshold: float | None = None  # max_ratio x baseline
    limit: float | None = None  # the gate's absolute max, when it was tested
    samples: float | None = None  # canary samples, when not the canary's tasks


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One metric's figures and its tests against the ratio and the absolute limit."""

    figures: Figures
    ratio_test: OneSidedTest | None = None
    limit_test: OneSidedTest | None = None


@dataclass(frozen=True, slots=True)
class _Ratio:
    """The test against `max_ratio` x baseline, with the figures it was made from."""

    test: OneSidedTest | None
    baseline: float
    threshold: float | None


def _evaluation(
    canary: float,
    ratio: _Ratio | None,
    limit_test: OneSidedTest | None,
    limit: float | None,
    samples: float | None = None,
) -> Evaluation:
    figures = Figures(
        canary=canary,
        baseline=ratio.baseline if ratio else None,
        threshold=ratio.threshold if ratio else None,
        limit=limit,
        samples=samples,
    )
    return Evaluation(figures, ratio.test if ratio else None, limit_test)


# -- error rate -----------------------------------------------------------------------------


def error_rate(inp: GateInput) -> Evaluation:
    """Errors per task: the canary's errors against those its baselines predict."""
    canary_tasks = inp.canary_tasks
    canary_errors = sum(w.errors for w in inp.canary)
    canary_rate = canary_errors / canary_tasks if canary_tasks else math.nan
    ratio = _error_ratio(inp)
    limit, limit_test = inp.gate.max, None
    if limit is not None and canary_tasks > 0:
        limit_test = _error_limit_test(canary_errors, canary_tasks, limit, inp.confidence)
    return _evaluation(canary_rate, ratio, limit_test, limit if canary_tasks > 0 else None)


def _error_ratio(inp: GateInput) -> _Ratio | None:
    """Observed against expected errors on the log scale (None: no ratio gate, or nothing expected).

    Nothing is expected when the canary processed no task yet (a wave judged
    right after its change): no ratio to test; the sample count keeps the
    verdict inconclusive.
    """
    matched = inp.matched
    expected = {w.agent: w.tasks * inp.pools[w.agent].smoothed_error_rate for w in matched}
    expected_errors = sum(expected.values())
    max_ratio = inp.gate.max_ratio
    if max_ratio is None or not matched or not expected_errors > 0:
        return None
    matched_tasks = sum(w.tasks for w in matched)
    matched_errors = sum(w.errors for w in matched)
    pools = inp.pools_of(matched)
    weights = inp.pool_weights(matched, lambda w: expected[w.agent] / expected_errors)
    observed_ratio = matched_errors / expected_errors if expected_errors else 1.0
    dispersion, df = error_dispersion(inp.spread or pools, matched, expected, observed_ratio)
    variance = dispersion / (max_ratio * expected_errors) + dispersion * sum(
        weights[p.key] ** 2 / (p.errors + 0.5) for p in pools
    )
    z = math.log((matched_errors + 0.5) / (max_ratio * expected_errors + 0.5)) / math.sqrt(variance)
    unsmoothed = sum(w.tasks * inp.pools[w.agent].error_rate for w in matched)
    test = OneSidedTest(
        matched_errors > max_ratio * unsmoothed, z, critical_value(inp.confidence, df)
    )
    return _Ratio(test, unsmoothed / matched_tasks, max_ratio * unsmoothed / matched_tasks)


def _error_limit_test(
    canary_errors: float, canary_tasks: float, limit: float, confidence: float
) -> OneSidedTest:
    """The canary's error rate against an absolute limit: one-sided binomial (normal)."""
    if limit <= 0:
        return OneSidedTest(canary_errors > 0, math.inf if canary_errors > 0 else 0.0, 0.0)
    if limit < 1:
        z = (canary_errors - limit * canary_tasks) / math.sqrt(limit * (1 - limit) * canary_tasks)
        return OneSidedTest(
            canary_errors > limit * canary_tasks, z, critical_value(confidence, None)
        )
    return OneSidedTest(False, -math.inf, 0.0)


# -- auth error rate ------------------------------------------------------------------------

AUTH_SERIES: Final = f'{METRIC_TASK_ERRORS}{{{LABEL_ERROR_REASON}="{ERROR_REASON_AUTH}"}}'
SHOWN: Final = 5


def auth_error_rate(inp: GateInput) -> Evaluation:
    """Tasks refused a credential per task: error_rate's tests on the auth share of the errors.

    Raises:
        ValueError: a canary agent does not export the auth share (the verdict is
            INCONCLUSIVE, never a pass).
    """
    unknown = sorted(w.agent for w in inp.canary if w.auth_errors is None)
    if unknown:
        raise ValueError(
            f"no {AUTH_SERIES} series from {len(unknown)} canary agent(s): "
            + ", ".join(unknown[:SHOWN])
        )
    pools: dict[PoolKey, Pool | None] = {}
    for pool in [*inp.pools.values(), *inp.spread]:
        if pool.key not in pools:
            pools[pool.key] = _auth_pool(pool)
    return error_rate(
        GateInput(
            gate=inp.gate,
            canary=[_auth_window(w) for w in inp.canary],
            pools={a: p for a, old in inp.pools.items() if (p := pools[old.key]) is not None},
            confidence=inp.confidence,
            spread=[p for old in inp.spread if (p := pools[old.key]) and len(p.members) >= 2],
        )
    )


def _auth_window(w: AgentWindow) -> AgentWindow:
    """The window with its auth errors as its errors."""
    return replace(w, errors=w.auth_errors or 0.0)


def _auth_pool(pool: Pool) -> Pool | None:
    """The pool's members that export the auth share, as auth windows (None: none do)."""
    members = tuple(_auth_window(m) for m in pool.members if m.auth_errors is not None)
    return Pool(pool.key, members) if members else None


# -- per-task means -------------------------------------------------------------------------


def mean_per_task(inp: GateInput) -> Evaluation:
    """Cost, tokens or output tokens per task: canary totals against the baselines' means."""
    metric = inp.gate.metric
    canary_tasks = inp.canary_tasks
    canary_total = sum(w.total(metric) for w in inp.canary)
    canary_mean = canary_total / canary_tasks if canary_tasks else math.nan
    matched = inp.matched
    ratio = None
    rel_var, df = DEFAULT_REL_VAR, None
    if matched:
        baseline_mean = {w.agent: inp.pools[w.agent].mean_per_task(metric) for w in matched}
        expected_total = sum(w.tasks * baseline_mean[w.agent] for w in matched)
        matched_total = sum(w.total(metric) for w in matched)
        observed_ratio = matched_total / expected_total if expected_total > 0 else 1.0
        rel_var, df = relative_variance(
            inp.spread or inp.pools_of(matched), matched, baseline_mean, metric, observed_ratio
        )
        max_ratio = inp.gate.max_ratio
        if max_ratio is not None:
            ratio = _mean_ratio(
                inp, max_ratio, baseline_mean, expected_total, matched_total, rel_var, df
            )
    limit, limit_test = inp.gate.max, None
    if limit is not None and canary_tasks > 0:
        limit_test = _mean_limit_test(
            canary_mean, limit, rel_var / canary_tasks, df, inp.confidence
        )
    return _evaluation(canary_mean, ratio, limit_test, limit if canary_tasks > 0 else None)


def _mean_ratio(
    inp: GateInput,
    max_ratio: float,
    baseline_mean: Mapping[str, float],
    expected_total: float,
    matched_total: float,
    rel_var: float,
    df: float | None,
) -> _Ratio:
    """Observed against expected totals on the log scale; a zero baseline has no ratio."""
    matched = inp.matched
    if not expected_total > 0:
        return _Ratio(OneSidedTest(False, -math.inf, 0.0), 0.0, None)
    matched_tasks = sum(w.tasks for w in matched)
    weights = inp.pool_weights(matched, lambda w: w.tasks * baseline_mean[w.agent] / expected_total)
    variance = rel_var / matched_tasks + rel_var * sum(
        weights[p.key] ** 2 / p.tasks for p in inp.pools_of(matched)
    )
    observed_ratio = matched_total / expected_total
    log_ratio = math.log(observed_ratio / max_ratio) if observed_ratio > 0 else -math.inf
    z = log_ratio / math.sqrt(variance)
    test = OneSidedTest(
        matched_total > max_ratio * expected_total, z, critical_value(inp.confidence, df)
    )
    return _Ratio(test, expected_total / matched_tasks, max_ratio * expected_total / matched_tasks)


def _mean_limit_test(
    canary_mean: float, limit: float, variance: float, df: float | None, confidence: float
) -> OneSidedTest:
    """The canary's mean against an absolute limit, on the log scale."""
    worse = canary_mean > limit
    if limit <= 0 or canary_mean <= 0:
        return OneSidedTest(worse, math.inf if worse else -math.inf, 0.0)
    z = math.log(canary_mean / limit) / math.sqrt(variance)
    return OneSidedTest(worse, z, critical_value(confidence, df))


# -- p95 latency ----------------------------------------------------------------------------


def latency_p95(inp: GateInput) -> Evaluation:
    """p95 latency: the share of canary tasks provably slower than the threshold, against 5%."""
    gate = inp.gate
    canary_samples = sum(w.buckets[-1][1] for w in inp.canary if w.buckets)
    # the figure shown: each canary agent's own p95, weighted by its tasks, like the
    # baseline figure (the p95 of all canary tasks merged mixes tiers and is not comparable
    # with the threshold); the verdict is the per-agent slower-share test below
    canary_p95 = _weighted_p95(inp.canary)
    matched = [w for w in inp.canary if w.agent in inp.pools and w.buckets]
    ratio = None
    if gate.max_ratio is not None and matched:
        ratio = _latency_ratio(inp, gate.max_ratio, matched)
    limit_test = None
    if gate.max is not None:
        limits = {w.agent: gate.max for w in inp.canary}
        limit_test = _slower_share_test(inp, limits, 1.0, None)
    return _evaluation(
        canary_p95 if canary_p95 is not None else math.nan,
        ratio,
        limit_test,
        gate.max,
        samples=canary_samples,
    )


def _weighted_p95(windows: Sequence[AgentWindow]) -> float | None:
    """The task-weighted mean of each window's own p95 (None: no latency observed)."""
    known = [
        (p95, w.buckets[-1][1])
        for w in windows
        if w.buckets and w.buckets[-1][1] > 0 and (p95 := quantile(P95, w.buckets)) is not None
    ]
    if not known:
        return None
    return sum(p * n for p, n in known) / sum(n for _, n in known)


def _latency_ratio(
    inp: GateInput, max_ratio: float, matched: Sequence[AgentWindow]
) -> _Ratio | None:
    """The slower share against `max_ratio` x each baseline's p95 (None: no baseline p95)."""
    pools = inp.pools_of(matched)
    pool_p95 = {p.key: quantile(P95, merge_buckets(p.members)) for p in pools}
    known = {w.agent: p95 for w in matched if (p95 := pool_p95[inp.pools[w.agent].key]) is not None}
    if not known:
        return None
    dispersion, df = latency_dispersion(inp.spread or pools)
    weights = [w.buckets[-1][1] for w in matched if w.agent in known]
    baseline = sum(known[w.agent] * w.buckets[-1][1] for w in matched if w.agent in known) / max(
        sum(weights), 1.0
    )
    thresholds = {agent: max_ratio * p95 for agent, p95 in known.items()}
    test = _slower_share_test(inp, thresholds, dispersion, df)
    return _Ratio(test, baseline, max_ratio * baseline)


def _slower_share_test(
    inp: GateInput, thresholds: Mapping[str, float], dispersion: float, df: float | None
) -> OneSidedTest | None:
    """Canary tasks provably above each agent's threshold against 5% of them (None: no task)."""
    windows = [w for w in inp.canary if w.agent in thresholds and w.buckets]
    observed = sum(w.buckets[-1][1] for w in windows)
    if observed <= 0:
        return None
    slower = sum(count_above(thresholds[w.agent], w.buckets) for w in windows)
    z = (slower - TAIL * observed) / math.sqrt(dispersion * TAIL * (1 - TAIL) * observed)
    return OneSidedTest(slower > TAIL * observed, z, critical_value(inp.confidence, df))


# -- custom ---------------------------------------------------------------------------------


def custom(inp: GateInput) -> Evaluation:
    """A custom PromQL value per agent: canary agents' mean against the baseline agents'."""
    gate = inp.gate
    canary_values = [w.custom[gate.name] for w in inp.canary if gate.name in w.custom]
    canary_mean = sum(canary_values) / len(canary_values) if canary_values else math.nan
    baseline_values = [
        m.custom[gate.name] for m in baseline_members(inp.pools.values()) if gate.name in m.custom
    ]
    ratio = None
    if gate.max_ratio is not None and canary_values and baseline_values:
        ratio = _custom_ratio(
            gate.max_ratio, canary_mean, len(canary_values), baseline_values, inp.confidence
        )
    limit_test = None
    if gate.max is not None and canary_values:
        worse = canary_mean > gate.max
        limit_test = OneSidedTest(worse, math.inf if worse else -math.inf, 0.0)
    return _evaluation(canary_mean, ratio, limit_test, gate.max if canary_values else None)


def _custom_ratio(
    max_ratio: float,
    canary_mean: float,
    canary_agents: int,
    baseline_values: Sequence[float],
    confidence: float,
) -> _Ratio:
    """canary mean - max_ratio x baseline mean over its standard error (from the baseline
    agents' variance); without a spread (one value, or a zero mean) the raw comparison."""
    baseline_mean = sum(baseline_values) / len(baseline_values)
    squares = [(v - baseline_mean) ** 2 for v in baseline_values]
    if len(baseline_values) >= 2 and baseline_mean > 0:
        baseline_variance = sum(squares) / (len(baseline_values) - 1)
        standard_error = math.sqrt(
            baseline_variance / canary_agents
            + max_ratio**2 * baseline_variance / len(baseline_values)
        )
        excess = canary_mean - max_ratio * baseline_mean
        z = excess / standard_error if standard_error > 0 else math.inf
        critical = critical_value(confidence, len(baseline_values) - 1)
    else:
        z, critical = math.inf, 0.0  # no spread known: the raw comparison decides
    test = OneSidedTest(canary_mean > max_ratio * baseline_mean, z, critical)
    return _Ratio(test, baseline_mean, max_ratio * baseline_mean)


Evaluator = Callable[[GateInput], Evaluation]

EVALUATORS: Final[Mapping[str, Evaluator]] = {
    "error_rate": error_rate,
    "auth_error_rate": auth_error_rate,
    "latency_p95": latency_p95,
    "custom": custom,
    **dict.fromkeys(MEAN_METRICS, mean_per_task),
}
