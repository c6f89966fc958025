"""Kill `reconcile apply` at every kind of step boundary; resume; every box is old or new.

One kill per boundary kind (bench/bench_crash.py sweeps every occurrence). A
clean rollout reaches the apply/watch/soak/gates boundaries; a box that crashes
on reload in wave 2 makes the run roll back, reaching restore.* and incident.
After the kill, `reconcile resume` (or `apply`) must leave every box on the old
or the new revision with file sha == stamp sha == loaded sha, no lease left,
and the old config still in its history.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.driver import BOUNDARIES
from reconciler.engine.resume import RESUME_BOUNDARIES

from .conftest import assert_converged, cli, head_shas, old_shas

ROLLBACK_ONLY = {b for b in BOUNDARIES if b.startswith("restore.")} | {"incident"}
APPLY_KINDS = sorted(set(BOUNDARIES) - ROLLBACK_ONLY)


def apply_args(fleet: DemoFleet, state: Path) -> list[str]:
    return ["apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
            "--state-dir", str(state)]  # fmt: skip


def wave_two_crashes(fleet: DemoFleet) -> None:
    """The last fast box (wave 2) crashes on reload: the rollout rolls back."""
    fleet.box(fleet.tier("fast")[-1].name).fault("crash-on-reload")


@pytest.mark.parametrize("kind", APPLY_KINDS)
async def test_kill_during_apply_then_resume_converges(
    fleet: DemoFleet, tmp_path: Path, kind: str
) -> None:
    """Killed at `kind` of a clean rollout, a resume leaves every box on old or new."""
    old, new = old_shas(fleet), head_shas(fleet)
    code, _, err = await cli(*apply_args(fleet, tmp_path), crash_at=kind)
    assert code == -9, f"never reached {kind}: exit {code}\n{err}"
    code, _, err = await cli("resume", "--repo", str(fleet.repo), "--state-dir", str(tmp_path))
    assert code in (0, 3), err
    assert_converged(fleet, old, new)


@pytest.mark.parametrize("kind", sorted(ROLLBACK_ONLY))
async def test_kill_during_rollback_then_resume_keeps_rolling_back(
    fleet: DemoFleet, tmp_path: Path, kind: str
) -> None:
    """Killed at `kind` while rolling back (a box failure: no verdict), resume with policy
    rollback rolls every box back: all old."""
    old, new = old_shas(fleet), head_shas(fleet)
    wave_two_crashes(fleet)
    code, _, err = await cli(*apply_args(fleet, tmp_path), crash_at=kind)
    assert code == -9, f"never reached {kind}: exit {code}\n{err}"
    code, _, err = await cli("resume", "--repo", str(fleet.repo), "--state-dir", str(tmp_path),
                             "--policy", "rollback")  # fmt: skip
    assert code == 3, err
    assert set(assert_converged(fleet, old, new).values()) == {"old"}


@pytest.mark.parametrize("kind", sorted(set(RESUME_BOUNDARIES) - {"resume.finish"}))
async def test_kill_during_resume_then_resume_again_converges(
    fleet: DemoFleet, tmp_path: Path, kind: str
) -> None:
    """A resume (policy rollback) killed at `kind` is itself resumed; twice more changes
    nothing."""
    old, new = old_shas(fleet), head_shas(fleet)
    code, _, _ = await cli(*apply_args(fleet, tmp_path), crash_at="watch:2")
    assert code == -9
    args = ("resume", "--repo", str(fleet.repo), "--state-dir", str(tmp_path),
            "--policy", "rollback")  # fmt: skip
    code, _, err = await cli(*args, crash_at=kind)
    assert code == -9, f"never reached {kind}: exit {code}\n{err}"
    code, _, err = await cli(*args)
    assert code == 3, err
    first = assert_converged(fleet, old, new)
    assert set(first.values()) == {"old"}
    writes = {n: b.counters.writes for n, b in fleet.boxes.items()}
    code, _, err = await cli(*args)
    assert code == 0 and "nothing to resume" in err, err
    assert {n: b.counters.writes for n, b in fleet.boxes.items()} == writes


async def test_apply_after_a_crash_settles_then_reaches_the_head(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """`reconcile apply` settles the rollout a crash cut short (no verdict), then goes on to
    the head: exit 0, every box new."""
    old, new = old_shas(fleet), head_shas(fleet)
    code, _, _ = await cli(*apply_args(fleet, tmp_path), crash_at="apply.verify:2")
    assert code == -9
    code, _, err = await cli(*apply_args(fleet, tmp_path))
    assert code == 0, err
    assert "settled" in err
    where = assert_converged(fleet, old, new)
    changed = {n for n in fleet.names if old[n] != new[n]}
    assert changed and {where[n] for n in changed} == {"new"}, where
