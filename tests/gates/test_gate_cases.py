"""The gate's decisions as a table: tests/cases/gates/*.json, one pinned verdict each."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from reconciler.gates import (
    AgentInfo,
    AgentWindow,
    Outcome,
    choose_pools,
    critical_value,
    evaluate,
    window_problem,
)
from reconciler.model.fleet import Gate

CASES = sorted((Path(__file__).parent.parent / "cases" / "gates").glob("*.json"))


def _window(d: dict[str, Any]) -> AgentWindow:
    buckets = tuple((float(le), float(c)) for le, c in d.get("buckets", []))
    return AgentWindow(
        agent=d["agent"], start=float(d.get("start", 0.0)), end=float(d.get("end", 600.0)),
        tasks=float(d["tasks"]), errors=float(d["errors"]), tokens_in=float(d["tokens_in"]),
        tokens_out=float(d["tokens_out"]), cost=float(d["cost"]), buckets=buckets,
        last_sample_at=d.get("last_sample_at"),
    )  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_gate_case(path: Path) -> None:
    """Each case's verdict (and the words of its reason) is pinned."""
    case = json.loads(path.read_text())
    gate = Gate.model_validate(case["gate"])
    canary = [(d.get("for", d["agent"]), _window(d)) for d in case["canary"]]
    unchanged = {d["agent"]: _window(d) for d in case["baseline"]}
    before = {d["agent"]: _window(d) for d in case.get("before", [])}
    names = {n for n, _ in canary} | set(unchanged) | {w.agent for _, w in canary}
    info = {n: AgentInfo(n, "fast", "us-east", "sha") for n in names}
    problems = {}
    good = []
    for name, w in canary:
        why = window_problem(
            w, agent=name, now=case.get("now"), stale_after_s=case.get("stale_after_s")
        )
        if why is None:
            good.append(w)
        else:
            problems[name] = why
    pools = choose_pools([w.agent for w in good], info, unchanged, before, gate.min_samples)
    v = evaluate(gate, good, pools, problems=problems)
    assert v.outcome is Outcome(case["expect"]), v.detail()
    if "reason" in case:
        assert case["reason"] in v.reason, v.reason
    if "kind" in case:
        assert v.baseline_kind == case["kind"]
    if v.outcome is not Outcome.INCONCLUSIVE:
        assert v.canary is not None and v.canary_samples >= gate.min_samples
    assert v.detail().startswith(v.outcome.value.upper())


def test_critical_values_match_student_t() -> None:
    """One-sided 95% critical values: t(1)=6.314, t(2)=2.920, t(5)=2.015, t(30)=1.697, z=1.645."""
    for df, want in ((1, 6.314), (2, 2.920), (5, 2.015), (30, 1.697), (None, 1.645)):
        assert math.isclose(critical_value(0.95, df), want, abs_tol=0.01)


def test_gates_never_pass_when_a_canary_has_no_data() -> None:
    """A canary agent with a problem makes every metric inconclusive, whatever the others show."""
    gate = Gate(name="e", metric="error_rate", max_ratio=1.5, min_samples=1)
    ok = AgentWindow("a", 0, 600, 1200, 12, 1, 1, 1)
    v = evaluate(gate, [ok], {}, problems={"b": "no series"})
    assert v.outcome is Outcome.INCONCLUSIVE and "b: no series" in v.reason
