"""Journey: the fleet lock is force-released under a running rollout.

An operator (or a second machine sharing the state backend) breaks the lock of a run
that is still alive: `reconcile unlock --force ID`. The run finds out at its next lock
renewal (every 10 s) and must behave as on a SIGTERM: no new box is started, what it
changed is put back, exit 3, and the revision is not blocked (no verdict on the change).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.testing.journeys import assert_converged, demo_fleet, explained

pytestmark = pytest.mark.timeout(180)


def test_a_run_whose_lock_is_broken_puts_back_what_it_changed(tmp_path: Path) -> None:
    with demo_fleet(tmp_path / "demo", 4) as demo:
        state = tmp_path / "state"
        before = {a: t.revision for a, t in demo.truths().items()}
        run = demo.background("apply", "--yes", "--format", "json", "--soak", "40",
                              "--state-dir", state)  # fmt: skip
        try:
            run.wait_for("box.applied", timeout=90)
            refused = demo.reconcile("apply", "--yes", "--state-dir", state, "--wait-lock", "0")
            found = re.search(r"force-release lock ([0-9a-f]+)", refused.output)
            with explained(refused.describe()):
                assert refused.rc == 1 and found, "the second apply did not name the lock"
            demo.reconcile("unlock", "--force", found.group(1), "--state-dir", state).expect(0)
            done = run.finish(timeout=60)
        finally:
            run.kill()
        with explained(done.describe()):
            done.refuse(r"Traceback")
            assert done.rc == 3, done.rc
            assert done.first("box.restored") is not None, "nothing was put back"
            assert "fleet lock was lost" in done.output
        truths = assert_converged(demo, before)
        assert all(not (t.stamp or {}).get("blocked_revision") for t in truths.values())
