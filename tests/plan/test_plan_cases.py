"""Table cases: wave sizes, budgets and rollout order (tests/cases/plan/*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.fleet import Rollout
from reconciler.plan import Change, PlanError, budget_count, make_plan, wave_sizes

from .builders import sha

CASES = Path(__file__).resolve().parents[1] / "cases" / "plan"
SIZE_CASES = sorted(p for p in CASES.glob("*.json") if not p.stem.startswith("order-"))
ORDER_CASES = sorted(CASES.glob("order-*.json"))
VALID_CASES = [
    p for p in SIZE_CASES if "error" not in json.loads(p.read_text(encoding="utf-8"))["expect"]
]


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("case", SIZE_CASES, ids=[c.stem for c in SIZE_CASES])
def test_wave_sizes_and_budget_case(case: Path) -> None:
    """Each case's agent count and policy give exactly its wave sizes and budget, or its error."""
    doc = _load(case)
    expect = doc["expect"]
    if "error" in expect:
        with pytest.raises(PlanError) as err:
            wave_sizes(doc["waves"], doc["agents"])
            budget_count(doc["failure_budget"], doc["agents"])
        assert expect["error"] in str(err.value), doc["description"]
        return
    assert wave_sizes(doc["waves"], doc["agents"]) == expect["sizes"], doc["description"]
    assert budget_count(doc["failure_budget"], doc["agents"]) == expect["budget"]


@pytest.mark.parametrize("case", VALID_CASES, ids=[c.stem for c in VALID_CASES])
def test_plan_waves_follow_the_sizes(case: Path) -> None:
    """A whole plan of n agents has the case's wave sizes, covering every agent once."""
    doc = _load(case)
    changes = [
        Change(
            agent=f"a{i:03d}",
            tier="fast",
            shard="s",
            desired_sha=sha("new"),
            live_sha=None,
            stamp_sha=None,
            stamp_revision=None,
        )
        for i in range(doc["agents"])
    ]
    plan = make_plan(
        changes,
        fleet_id="f",
        target_revision="r",
        policy=Rollout(waves=doc["waves"], failure_budget=doc["failure_budget"]),
    )
    assert [len(w.agents) for w in plan.waves] == doc["expect"]["sizes"]
    assert [w.index for w in plan.waves] == list(range(len(plan.waves)))
    assert sorted(a for w in plan.waves for a in w.agents) == sorted(c.agent for c in changes)
    assert plan.failure_budget == doc["expect"]["budget"]


@pytest.mark.parametrize("case", ORDER_CASES, ids=[c.stem for c in ORDER_CASES])
def test_rollout_order_case(case: Path) -> None:
    """Each case's agents land in exactly the expected waves, in the expected order."""
    doc = _load(case)
    changes = [
        Change(
            agent=a["agent"],
            tier=a["tier"],
            shard=a["shard"],
            desired_sha=sha("new"),
            live_sha=None,
            stamp_sha=None,
            stamp_revision=None,
        )
        for a in doc["agents"]
    ]
    plan = make_plan(changes, fleet_id="f", target_revision="r", policy=Rollout(waves=doc["waves"]))
    assert [list(w.agents) for w in plan.waves] == doc["expect"], doc["description"]


def test_there_are_cases() -> None:
    """The case directory is found and holds the cases the brief asks for."""
    names = {c.stem for c in SIZE_CASES}
    for n in (1, 3, 7, 20, 200):
        assert any(f"-{n}-agent" in name for name in names), n
    assert len(SIZE_CASES) >= 25
    assert ORDER_CASES
