"""`git revert` of a bad head, applied: every box restores from its own history, no bytes sent.

The demo's counters count the bytes of config files (and their history copies)
the boxes receive over SFTP: a revert must leave them unchanged, while it
still goes in waves (sizes kept, no soak, no gates) with the watchdog.
"""

from __future__ import annotations

import json
from pathlib import Path

from resume.conftest import assert_converged, cli, git, head_shas, old_shas

from reconciler.demo.fleet import DemoFleet
from reconciler.journal.sqlite import SqliteJournal


def _bytes(fleet: DemoFleet) -> dict[str, int]:
    return {n: b.counters.config_file_bytes for n, b in fleet.boxes.items()}


async def test_git_revert_restores_from_history_in_waves_with_zero_config_bytes(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """The bad head rolls out; its revert restores every box from history: 0 config bytes."""
    old = old_shas(fleet)
    bad = head_shas(fleet)
    state = ("--state-dir", str(tmp_path / "state"))
    code, _, err = await cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2", *state)
    assert code == 0, err
    forward = _bytes(fleet)
    assert any(forward.values())  # the bad head was sent
    reverted = git(fleet.repo, "revert", "--no-edit", fleet.head_commit)
    assert head_shas(fleet) == old
    code, out, err = await cli("apply", "--repo", str(fleet.repo), "--dry-run", "--format",
                               "json", *state)  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    assert {b["delivery"] for b in plan["boxes"]} == {"restore"}
    assert [len(w["agents"]) for w in plan["waves"]] == [1, 2]  # the policy's waves, kept
    assert {w["soak_s"] for w in plan["waves"]} == {0.0}
    assert all(w["gates"] == [] for w in plan["waves"])
    reloads = {n: b.counters.reloads for n, b in fleet.boxes.items()}
    code, _, err = await cli("apply", "--repo", str(fleet.repo), "--yes", *state)
    assert code == 0, err
    assert _bytes(fleet) == forward, "a revert sent config bytes"
    changed = [n for n in fleet.names if old[n] != bad[n]]
    assert all(fleet.box(n).counters.reloads == reloads[n] + 1 for n in changed)
    assert set(assert_converged(fleet, old, bad).values()) == {"old"}
    journal = SqliteJournal(tmp_path / "state")
    try:
        last = journal.history()[0]
    finally:
        journal.close()
    assert last.target_revision == reverted
    assert last.summary is not None and last.summary["revert"] is True
    assert isinstance(last.summary["time_from_commit_s"], float)
