"""Resume with the journal lost (stamps and leases decide), twice, and with policy finish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet

from .conftest import assert_converged, cli, commit, head_shas, old_shas
from .test_crash import apply_args


@pytest.mark.parametrize("kind", ["apply.stamp:2", "apply.write:3", "soak", "restore.write"])
async def test_journal_lost_resume_rolls_back_from_the_stamps(
    fleet: DemoFleet, tmp_path: Path, kind: str
) -> None:
    """The state dir is deleted after the kill; stamps, histories and leases suffice."""
    old, new = old_shas(fleet), head_shas(fleet)
    if kind.startswith("restore"):
        fleet.box(fleet.tier("fast")[-1].name).fault("crash-on-reload")
    state = tmp_path / "state"
    code, _, _ = await cli(*apply_args(fleet, state), crash_at=kind)
    assert code == -9
    shutil.rmtree(state)
    fresh = tmp_path / "fresh-runner"
    args = ("resume", "--repo", str(fleet.repo), "--state-dir", str(fresh), "--policy", "rollback")
    code, _, err = await cli(*args)
    assert code == 3, err
    assert "found from the stamps" in err
    assert set(assert_converged(fleet, old, new).values()) == {"old"}
    code, _, err = await cli(*args)
    assert code == 0 and "nothing to resume" in err, err


async def test_policy_finish_settles_then_apply_carries_on(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """on_resume: finish keeps boxes already on the head; the next apply brings the rest."""
    commit(fleet.repo, "fleet.yaml", "failure_budget: 0", "failure_budget: 0\n  on_resume: finish",
           "resume by finishing")  # fmt: skip
    old, new = old_shas(fleet), head_shas(fleet)
    code, _, _ = await cli(*apply_args(fleet, tmp_path), crash_at="apply.verify:2")
    assert code == -9
    history = ("history", "--repo", str(fleet.repo), "--state-dir", str(tmp_path), "--format",
               "json")  # fmt: skip
    code, out, err = await cli(*history)
    assert code == 0, err
    cut = json.loads(out)["rollouts"][0]  # killed in its second wave: two waves begun
    assert (cut["outcome"], cut["waves_reached"], cut["waves_total"]) == ("unfinished", 2, 2)
    code, _, err = await cli(*apply_args(fleet, tmp_path))
    assert code == 0, err
    assert "settled" in err
    code, out, err = await cli(*history)
    assert code == 0, err
    settled = next(r for r in json.loads(out)["rollouts"] if r["rollout_id"] == cut["rollout_id"])
    # the waves the rollout began before the kill, not the resume's none; its whole span
    assert settled["resumed"] and settled["waves_reached"] == 2, settled
    assert settled["duration_s"] is not None and settled["duration_s"] > 0.5, settled
    where = assert_converged(fleet, old, new)
    assert all(where[n] == "new" for n in fleet.names if old[n] != new[n])
