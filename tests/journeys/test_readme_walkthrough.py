"""The README's first command, as a new user runs it: `reconcile demo` end to end.

Every step of the walkthrough (up, validate, diff, dry run, the rollout in waves, the API
key rotation, the bad change rolled back by its gates, the health matrix) against the
default 20-box demo fleet and the demo repo's own fleet.yaml, gates on. It must exit 0;
the unit tests of each step cannot see a step whose exit code the next release changes.
"""

from __future__ import annotations

import pytest

from reconciler.testing.journeys import explained, run

pytestmark = pytest.mark.timeout(420)


def test_reconcile_demo_walks_through_every_step_and_exits_0(tmp_path):
    demo_dir = tmp_path / "demo-fleet"
    try:
        done = run("demo", "--dir", demo_dir, timeout=400)
        with explained(done.describe()):
            done.expect(0, r"ok: 20 agents", r"rolled-back \(exit 3\)", r"the health matrix")
            done.expect(0, r"demo down")
            done.refuse(r"Traceback", r"error: `reconcile")
            for step in ("diff", "apply", "rotate-secret", "status"):
                assert f"$ reconcile {step}" in done.output, f"no `reconcile {step}` step"
    finally:
        run("demo", "down", "--dir", demo_dir, timeout=60)
