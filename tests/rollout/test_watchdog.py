"""The watchdog: table cases (tests/cases/watchdog/*.json) and the verdicts' order."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.model.box import Health
from reconciler.rollout.watchdog import Limits, Sample, Verdict, judge
from reconciler.testing.clock import FakeClock

CASES = sorted((Path(__file__).resolve().parents[1] / "cases" / "watchdog").glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_watchdog_case(case: Path) -> None:
    """Each case's health sample (and the earlier one) gives exactly its verdict and reason."""
    doc: dict[str, Any] = json.loads(case.read_text(encoding="utf-8"))
    clock = FakeClock()
    previous = None
    if doc["previous"] is not None:
        previous = Sample(Health.model_validate(doc["previous"]["health"]), clock.now())
        clock.advance(doc["previous"]["taken_s_ago"])
    health = None if doc["health"] is None else Health.model_validate(doc["health"])
    got = judge(
        health,
        expected_sha=doc["expected_sha"],
        now=clock.now(),
        previous=previous,
        limits=Limits(**doc["limits"]),
        error=doc["error"],
    )
    assert got.verdict is Verdict(doc["expect"]["verdict"]), doc["description"]
    assert doc["expect"]["reason"] in got.reason, got.reason
    assert got.ok is (got.verdict is Verdict.OK)


def test_there_are_cases() -> None:
    """Every verdict has at least one case."""
    verdicts = {json.loads(c.read_text())["expect"]["verdict"] for c in CASES}
    assert verdicts == {v.value for v in Verdict}


def test_dead_is_worse_than_stale_is_worse_than_ok() -> None:
    """Verdicts order by severity, OK the best and DEAD the worst."""
    assert Verdict.DEAD.is_worse(Verdict.STALE)
    assert Verdict.STALE.is_worse(Verdict.NOT_LOADED)
    assert Verdict.NOT_LOADED.is_worse(Verdict.STALLED)
    assert Verdict.STALLED.is_worse(Verdict.OK)
    assert not Verdict.OK.is_worse(Verdict.OK)


def test_limits_must_be_positive() -> None:
    """A zero or negative limit is refused."""
    with pytest.raises(ValueError, match="positive"):
        Limits(max_heartbeat_age_s=0)


def test_window_uses_the_clock_not_the_box_time() -> None:
    """The stall window is timed by the caller's clock: an hour of FakeClock is an hour."""
    clock = FakeClock()
    sample = Health(
        alive=True,
        heartbeat_age_s=1,
        loaded_sha256="a" * 64,
        tasks_processed=5,
        queue_depth=4,
        uptime_s=100,
    )
    before = Sample(sample, clock.now())
    clock.advance(timedelta(hours=1).total_seconds())
    later = sample.model_copy(update={"uptime_s": 3700.0})
    got = judge(later, expected_sha="a" * 64, now=clock.now(), previous=before)
    assert got.verdict is Verdict.STALLED and "in 3600s" in got.reason
