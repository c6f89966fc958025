"""`reconcile history`: from the journal (figures the driver measured), and from stamps alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from resume.conftest import cli, git

from reconciler.demo.fleet import DemoFleet


async def test_history_lists_a_rollout_and_its_revert_with_their_figures(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """A rollout and its revert are listed with duration, waves and the time from the commit."""
    state = ("--state-dir", str(tmp_path / "state"))
    repo = ("--repo", str(fleet.repo))
    code, _, err = await cli("apply", *repo, "--yes", "--soak", "0.2", *state)
    assert code == 0, err
    git(fleet.repo, "revert", "--no-edit", fleet.head_commit)
    code, _, err = await cli("apply", *repo, "--yes", *state)
    assert code == 0, err
    code, out, err = await cli("history", *repo, "--format", "json", *state)
    assert code == 0, err
    rows = json.loads(out)["rollouts"]
    assert [r["outcome"] for r in rows] == ["done", "done"]
    revert, first = rows
    assert revert["time_from_commit_s"] is not None and first["time_from_commit_s"] is None
    assert first["waves_reached"] == first["waves_total"] == 2
    assert all(r["duration_s"] is not None and r["source"] == "journal" for r in rows)
    code, out, _ = await cli("history", *repo, *state)
    assert code == 0 and first["rollout_id"] in out


async def test_history_without_a_journal_reads_the_stamps(fleet: DemoFleet, tmp_path: Path) -> None:
    """With the state dir gone, the rollouts are rebuilt from the boxes' stamp histories."""
    fleet.box(fleet.tier("fast")[-1].name).fault("crash-on-reload")
    state = tmp_path / "state"
    code, _, err = await cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
                             "--state-dir", str(state))  # fmt: skip
    assert code == 3, err
    shutil.rmtree(state)
    code, out, err = await cli("history", "--repo", str(fleet.repo), "--format", "json",
                               "--state-dir", str(state))  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)["rollouts"]
    assert rows[0]["outcome"] == "rolled-back" and rows[0]["source"] == "stamps"
    # when the rollback began is not on the boxes: no rollback time, the restores' span
    assert rows[0]["time_to_roll_back_s"] is None and rows[0]["restore_span_s"] is not None
    assert rows[-1]["rollout_id"] == "demo-seed"
