"""Journey: a config_path change is a rollout from the old path to the new one.

The demo repo's head is first reverted to what the boxes run; then one agent's
config_path moves (within connection.allowed_paths, /etc/agent). Expected: `diff`
(pull-request mode) flags it [access], old → new; `apply --dry-run` prints "config
path OLD → NEW" for that box (text and JSON plan); `apply --yes` exits 0, the new path
holds the config and a stamp for the head, the old path's config, stamp, history and
secrets file are gone (said in the output), and every other box is exactly as it was.
A second diff finds nothing.
"""

from __future__ import annotations

import json

import pytest

from reconciler.testing.journeys import BoxFiles, demo_fleet, explained, sha256_file

pytestmark = pytest.mark.timeout(180)

OLD, NEW = "/etc/agent/config.yaml", "/etc/agent/config-next.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("move") / "demo", 4) as fleet:
        yield fleet


def test_a_config_path_move_rolls_out_old_to_new(demo, state_dir):
    demo.revert_head()  # the boxes run this config: only the move will differ
    mover = demo.agents[0]
    shard = demo.info["agents"][mover]["shard"]

    def move(doc):
        (entry,) = [e for e in doc["agents"] if e["name"] == mover]
        entry["config_path"] = NEW

    head = demo.commit_yaml(f"shards/{shard}.yaml", move, f"{mover}: move its config file")
    old = demo.files(mover)
    new = BoxFiles(old.config.with_name("config-next.yaml"),
                   old.config.with_name("config-next.secrets.json"))  # fmt: skip
    before = demo.truths()
    secrets_before = old.secrets.read_bytes()

    diff = demo.reconcile("diff", "--base", "HEAD~1", "--head", "HEAD")  # the pull request
    with explained(diff.describe()):
        diff.expect((0, 2), r"\[access\]", mover, OLD, NEW).refuse(r"Traceback")

    dry = demo.reconcile("apply", "--dry-run", "--state-dir", state_dir)
    with explained(dry.describe()):
        dry.expect(0, rf"{mover}: write\+reload.*config path {OLD} → {NEW}", r"1 box\(es\) change")
    plan = demo.reconcile("apply", "--dry-run", "--format", "json", "--state-dir", state_dir)
    with explained(plan.describe()):
        plan.expect(0)
        boxes = json.loads(plan.stdout)["boxes"]
        assert [(b["agent"], b["moved_from"], b["config_path"]) for b in boxes] == [
            (mover, OLD, NEW)
        ], boxes
    assert not new.config.exists(), "a dry run wrote the new path"

    applied = demo.reconcile("apply", "--yes", "--state-dir", state_dir)
    with explained(applied.describe()):
        applied.expect(0, r"box\.moved", OLD, NEW).refuse(r"Traceback", r"rollback\.started")
        assert sha256_file(new.config) == before[mover].file_sha, "the new path's config"
        stamp = json.loads(new.stamp.read_bytes())
        assert (stamp["agent"], stamp["revision"], stamp["outcome"]) == (mover, head, "applied")
        assert stamp["config_sha256"] == before[mover].file_sha
        assert new.secrets.read_bytes() == secrets_before
        assert new.secrets.stat().st_mode & 0o777 == 0o600
        for gone in (old.config, old.stamp, old.history, old.secrets):
            assert not gone.exists(), f"{gone} is still there after the move"
        assert not new.lease.exists() and not old.lease.exists()
        for name in demo.agents[1:]:
            after = demo.truth(name)
            assert (after.file_sha, after.stamp_raw) == (
                before[name].file_sha,
                before[name].stamp_raw,
            ), f"{name} changed"
    again = demo.reconcile("diff", "--exit-code")
    with explained(again.describe()):
        again.expect(0)
