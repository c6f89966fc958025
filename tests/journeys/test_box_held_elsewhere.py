"""A box held by a run on another machine (a laptop beside CI): apply reads every box's
lease before its first write. Without --wait-lock it exits 1 naming the holder, having
written nothing; with --wait-lock it waits, and goes on once the other run lets go.

The laptop's run is a lease file on one box, as a live run on another machine leaves it
(another machine id, a fresh heartbeat): its own fleet lock is in its own journal, so only
the box can tell. The demo repo's own fleet.yaml: gates on, the demo's soak.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.testing.journeys import Demo, assert_converged, demo_fleet, explained, wait_until

pytestmark = pytest.mark.timeout(240)

LAPTOP_RUN = "r-20261201T120000Z-1a2b3c4d"
LAPTOP = "ops@laptop-7 pid 4242"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("held") / "demo", 4) as fleet:
        yield fleet


def hold(demo: Demo, agent: str) -> Path:
    """The lease a live run on another machine holds on `agent`'s box; its directory."""
    now = datetime.now(UTC)
    lease_dir = demo.files(agent).lease
    lease_dir.mkdir(mode=0o700)
    doc = {
        "holder": LAPTOP,
        "rollout_id": LAPTOP_RUN,
        "expires_at": (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "heartbeat_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fence": 1,
        "host": "laptop-7",
        "pid": 4242,
        "machine_id": "0" * 32,
        "boot_id": "laptop-boot",
        "start_time": 1,
    }
    (lease_dir / "lease.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return lease_dir


def test_a_box_held_by_another_run_is_refused_then_waited_for(demo, tmp_path):
    """exit 1 naming the laptop's rollout, nothing written; then --wait-lock waits for it."""
    fast, head, first = demo.tier("fast"), demo.head(), demo.first_commit
    held_box = fast[-1]
    before_counters = demo.all_counters()
    lease_dir = hold(demo, held_box)
    try:
        refused = demo.reconcile("apply", "--yes", "--state-dir", tmp_path / "ci")
        with explained(refused.describe()):
            refused.expect(1, LAPTOP_RUN, "laptop-7", held_box, "Nothing was written")
            refused.expect(1, "--wait-lock")
            refused.refuse("Traceback")
        after = demo.all_counters()
        assert {a: after[a]["reloads"] for a in demo.agents} == {
            a: before_counters[a]["reloads"] for a in demo.agents
        }, "a box was reloaded by a refused apply"
        assert_converged_except_lease(demo, first, held_box)

        waiting = demo.background(
            "apply", "--yes", "--wait-lock", "60", "--state-dir", tmp_path / "ci"
        )
        try:
            wait_until(
                lambda: "waiting up to 60s" in waiting.snapshot().output,
                timeout=60,
                what="apply says it waits for the held box",
            )
            shutil.rmtree(lease_dir)  # the laptop's run is done with the box
            done = waiting.finish(timeout=180)
        finally:
            waiting.kill()
        with explained(done.describe()):
            done.expect(0, LAPTOP_RUN)
            done.refuse("Traceback")
            assert_converged(demo, head, agents=fast, others=first, outcome="applied")
    finally:
        shutil.rmtree(lease_dir, ignore_errors=True)


def assert_converged_except_lease(demo: Demo, revision: str, held: str) -> None:
    """Every box still on `revision`, consistent; the held box's only problem its lease."""
    truths = demo.truths()
    for name, t in sorted(truths.items()):
        problems = [p for p in t.problems() if not (name == held and "lease" in p)]
        assert not problems, f"{name}: {problems}"
        assert t.revision == revision, f"{name} on {t.revision}, not {revision}"
