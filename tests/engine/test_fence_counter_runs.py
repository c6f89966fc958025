"""Fencing numbers come from the journal's counter too: two rollouts on a demo fleet get
rising numbers even when the boxes' stamps were reset in between (a restored backup, a
box rebuilt): the boxes alone would hand the second run the first one's number again.

Metric gates are off (gates=False) and the soak short: this tests the fencing numbers two
runs take, not the gates; the racing-writer journeys (tests/journeys/test_races.py) run
with the demo repo's gates on."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.clock import SystemClock
from reconciler.engine.session import Request, execute, prepare
from reconciler.journal import SqliteJournal
from reconciler.model.box import parse_stamp
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import Recorder
from reconciler.rollout.watchdog import Limits

FAST = Limits(max_heartbeat_age_s=5.0, stall_window_s=0.6)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    async with DemoFleet.start(tmp_path / "demo", 2, tick_s=0.1, rate=20.0) as f:
        yield f


async def apply(fleet: DemoFleet, journal: SqliteJournal) -> Outcome:
    p = await prepare(Request(repo=fleet.repo, soak_s=0.2, watchdog=FAST, soak_interval_s=0.1,
                              gates=False))  # fmt: skip
    try:
        result = await execute(p, clock=SystemClock(), reporter=Recorder(), journal=journal)
    finally:
        await p.link.close()
    return result.outcome


def fences(fleet: DemoFleet) -> dict[str, int]:
    out = {}
    for name, box in fleet.boxes.items():
        out[name] = parse_stamp(box.path(box.paths.stamp).read_bytes()).fence
    return out


def reset_stamps(fleet: DemoFleet) -> None:
    """Every stamp as it was, but fence 0 (as an older reconciler or a restore left it)."""
    for box in fleet.boxes.values():
        path = box.path(box.paths.stamp)
        stamp = parse_stamp(path.read_bytes())
        path.write_bytes(stamp.model_copy(update={"fence": 0}).to_bytes())


async def test_fences_rise_across_runs_even_when_the_stamps_were_reset(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    journal = SqliteJournal(tmp_path / "state")
    try:
        assert await apply(fleet, journal) is Outcome.DONE
        first = fences(fleet)
        changed = {n for n, f in first.items() if f > 0}
        assert changed
        reset_stamps(fleet)
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
        subprocess.run([*git, "revert", "--no-edit", "HEAD"], cwd=fleet.repo, check=True,
                       capture_output=True)  # fmt: skip
        assert await apply(fleet, journal) is Outcome.DONE
        second = fences(fleet)
        for name in changed:
            assert second[name] > first[name], (first, second)
    finally:
        journal.close()
