"""Kill `reconcile apply` just before and just after the journal's batch commits; resume.

The driver commits its held journal records at the durability boundaries (journal/sqlite.py):
before a wave's lease takes, at every phase or wave change, at finish. On the 5-box demo
fleet (two waves of the changed tier) a clean run commits: 1 started, 2 preflight passed,
3 wave 1's lease intents, 4-6 watch/soak/gates, 7 wave 1 declared done, 8 wave 2's lease
intents, ...; a run whose wave-1 box crashes on reload: 4 the rollback decided, 5 its
restore's lease intent. `journal.commit:n` kills just before commit n (its records lost),
`journal.committed:n` just after. After each, one `reconcile resume` leaves every box on
the old or the new revision (bench/bench_crash.py sweeps every commit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.journal import SqliteJournal

from .conftest import assert_converged, cli, head_shas, old_shas


def _apply(fleet: DemoFleet, state: Path) -> list[str]:
    return ["apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
            "--state-dir", str(state)]  # fmt: skip


def _resume(fleet: DemoFleet, state: Path, *more: str) -> list[str]:
    return ["resume", "--repo", str(fleet.repo), "--state-dir", str(state), *more]


async def _kill(fleet: DemoFleet, state: Path, at: str) -> None:
    code, _, err = await cli(*_apply(fleet, state), crash_at=at)
    assert code == -9, f"never reached {at}: exit {code}\n{err}"


@pytest.mark.parametrize(
    ("at", "wave_one"),
    [
        ("journal.commit:7", "old"),  # wave 1's passed gates lost: settle restores it
        ("journal.committed:7", "new"),  # wave 1 declared done on disk: settle keeps it
        ("journal.commit:8", "new"),  # wave 2's lease intents lost, wave 1 kept
    ],
)
async def test_killed_at_a_commit_of_a_clean_run_one_resume_settles(
    fleet: DemoFleet, tmp_path: Path, at: str, wave_one: str
) -> None:
    """Settle keeps exactly the waves whose passed gates were committed; every box is on
    old or new, consistent, no lease left, and the journal holds no unfinished rollout."""
    old, new = old_shas(fleet), head_shas(fleet)
    await _kill(fleet, tmp_path, at)
    code, _, err = await cli(*_resume(fleet, tmp_path))
    assert code == 0, err
    where = assert_converged(fleet, old, new)
    changed = sorted(n for n in fleet.names if old[n] != new[n])
    firsts = [n for n in changed if where[n] == "new"]
    assert len(firsts) == (1 if wave_one == "new" else 0), where
    journal = SqliteJournal(tmp_path)
    assert journal.unfinished() == []
    journal.close()


@pytest.mark.parametrize("at", ["journal.committed:4", "journal.commit:5"])
async def test_killed_at_a_commit_of_a_rollback_one_resume_rolls_back(
    fleet: DemoFleet, tmp_path: Path, at: str
) -> None:
    """The wave-1 box crashes on reload: killed once the rollback is decided (on disk) or
    just before its restore's lease intent is, one resume puts every box back: all old."""
    old, new = old_shas(fleet), head_shas(fleet)
    fleet.box(fleet.tier("fast")[-1].name).fault("crash-on-reload")
    await _kill(fleet, tmp_path, at)
    code, _, err = await cli(*_resume(fleet, tmp_path, "--policy", "rollback"))
    assert code == 3, err
    assert set(assert_converged(fleet, old, new).values()) == {"old"}
