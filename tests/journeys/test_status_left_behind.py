"""Journey: `reconcile status` after a budgeted rollout left a box behind.

A 4-box `demo up` fleet, its head a pending tier-fast change. fleet.yaml gets
`rollout.failure_budget: 1` (committed with the change), the last fast box crashes on
its reload: the rollout finishes (the failure is within the budget) and leaves that box
on its old config. `status` then exits 2, names the box as left behind by that rollout
(in text and in JSON), and never says "every agent is green".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing.journeys import demo_fleet, explained

pytestmark = pytest.mark.timeout(120)


def _budget(doc: Any) -> None:
    doc["rollout"]["failure_budget"] = 1


def test_status_exits_2_and_names_the_box_a_budgeted_rollout_left_behind(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with demo_fleet(tmp_path / "demo", 4) as demo:
        demo.commit_yaml("fleet.yaml", _budget, "rollout: a failure budget of one box")
        fast = demo.tier("fast")
        sick = fast[-1]
        demo.fault(sick, "crash-on-reload")
        r = demo.reconcile("apply", "--yes", "--format", "json", "--state-dir", state)
        with explained(r.describe()):
            r.expect(0).refuse("Traceback")
            finished = r.first("rollout.finished")
            assert finished is not None and finished["left_behind"] == [sick], finished
        demo.wait_alive()

        r = demo.reconcile("status", "--window", "1", "--state-dir", state)
        with explained(r.describe()):
            r.expect(2, "left behind").refuse("every agent is green", "Traceback")
            lines = [line for line in r.stdout.splitlines() if sick in line]
            assert any("left behind by the last rollout" in line for line in lines), lines
            assert not [a for a in fast[:-1] if a in r.stdout], r.stdout  # they are current

        r = demo.reconcile("status", "--window", "1", "--format", "json", "--state-dir", state)
        with explained(r.describe()):
            r.expect(2).refuse("Traceback")
            doc = json.loads(r.stdout)
            assert doc["left_behind"] == [sick] and doc["exit_code"] == 2
            assert doc["left_by"]
            (row,) = [a for a in doc["agents"] if a["agent"] == sick]
            assert row["left_behind"] is True
