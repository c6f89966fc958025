"""Journey: agents/_base.yaml moves every agent's config file at once.

No box then has a stamp at its new path, so the stamps name no revision to learn the
old path from; reconciler finds it in HEAD and the commits that changed a path. Expected,
on the demo fleet with its own fleet.yaml (gates on, short soak): the live `diff` of the
work tree shows every agent moved, old path → new path [access] (never "added" with its
whole payload), `status` reads each box at its old path (no "unmanaged"), and `apply`
moves every box: the new path holds config and stamp, the old path's files are gone, and
a second diff is empty.
"""

from __future__ import annotations

import json

import pytest

from reconciler.testing.journeys import BoxFiles, demo_fleet, explained, sha256_file

pytestmark = pytest.mark.timeout(240)

OLD, NEW = "/etc/agent/config.yaml", "/etc/agent/v2/config.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("move-all") / "demo", 4) as fleet:
        yield fleet


def test_moving_every_agent_is_a_move_not_an_adoption(demo, state_dir):
    demo.revert_head()  # the boxes run this config: only the move will differ
    base = demo.repo / "agents" / "_base.yaml"
    base.write_text(base.read_text().replace(f"config_path: {OLD}", f"config_path: {NEW}"))
    before = demo.truths()
    olds = {a: demo.files(a) for a in demo.agents}

    diff = demo.reconcile("diff", "--format", "json", "--cost-window", "0")
    with explained(diff.describe()):
        diff.expect(0)
        agents = json.loads(diff.stdout)["diff"]["agents"]
        assert sorted(a["agent"] for a in agents) == sorted(demo.agents)
        for a in agents:
            assert a["status"] == "unchanged", a  # the payload is the same
            assert [(c["path"], c["old"], c["new"]) for c in a["access"]] == [
                (["config_path"], OLD, NEW)
            ], a
    text = demo.reconcile("diff", "--cost-window", "0")
    with explained(text.describe()):
        text.expect(0, rf"{len(demo.agents)} moved", rf"{OLD} → {NEW}")
        text.refuse(r"added", "Traceback")

    status = demo.reconcile("status", "--window", "1")
    with explained(status.describe()):
        status.refuse(r"unmanaged", "Traceback")

    demo.git("commit", "-qam", "every agent's config moves to /etc/agent/v2")
    applied = demo.reconcile("apply", "--yes", "--soak", "1", "--state-dir", state_dir)
    with explained(applied.describe()):
        applied.expect(0, r"box\.moved").refuse(r"rollback\.started", "Traceback")
    for agent in demo.agents:
        old = olds[agent]
        new = BoxFiles(old.config.with_name("v2") / "config.yaml",
                       old.config.with_name("v2") / "config.secrets.json")  # fmt: skip
        assert sha256_file(new.config) == before[agent].file_sha, agent
        assert json.loads(new.stamp.read_bytes())["agent"] == agent
        for gone in (old.config, old.stamp, old.secrets):
            assert not gone.exists(), f"{agent}: {gone} is still there after the move"
    again = demo.reconcile("diff", "--exit-code", "--cost-window", "0")
    with explained(again.describe()):
        again.expect(0)
