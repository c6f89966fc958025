"""Journey 7: two applies of the same head, from two machines (two state dirs), at once.

Their fleet locks are separate (two journals), so only the per-box leases, the stamp
compare-and-swap and the fencing numbers stand between them. Expected: exactly one of
them writes each box (every changed box reloaded once, its stamp and its history naming
one of the two rollouts), no box on a mixed revision (all on the head), nothing restored.
A run that finds a box already on the head (the other put it there) counts it done;
which boxes each run writes depends on timing. A run that loses a box's lease before
changing anything exits 1 with nothing changed and no incident report.
"""

from __future__ import annotations

import pytest

from reconciler.testing.journeys import assert_converged, demo_fleet, explained

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("j7") / "demo", 4) as fleet:
        yield fleet


def test_two_applies_at_once_one_writes_each_box_the_other_changes_nothing(demo, tmp_path):
    """Winner 0, loser 1 with nothing changed and no incident; every box on the head, once."""
    fast, head = demo.tier("fast"), demo.head()
    before = demo.all_counters()
    states = [tmp_path / "laptop", tmp_path / "ci-runner"]
    runs = [demo.background("apply", "--yes", "--format", "json", "--state-dir", s) for s in states]
    try:
        results = [r.finish(timeout=100) for r in runs]
    finally:
        for r in runs:
            r.kill()
    outputs = "\n".join(r.describe() for r in results)
    with explained(outputs):
        for r in results:
            r.refuse(r"Traceback")
        codes = sorted(r.rc for r in results)
        assert codes in ([0, 0], [0, 1]), codes
        rollouts = {(r.first("rollout.started") or {}).get("rollout_id") for r in results} - {None}
        assert rollouts, "no run printed rollout.started"
        for i, r in enumerate(results):
            assert r.first("box.restored") is None, "a run restored a box"
            if r.rc == 1:
                assert r.first("box.applied") is None, "the run that lost applied a box"
                incidents = states[i] / "incidents"
                assert not incidents.exists() or not any(incidents.iterdir()), (
                    "an incident report in the losing run's state dir"
                )
        truths = assert_converged(demo, head, agents=fast, outcome="applied")
        after = demo.all_counters()
        reloads = {a: after[a]["reloads"] - before[a]["reloads"] for a in demo.agents}
        assert reloads == {a: int(a in fast) for a in demo.agents}, f"reloads: {reloads}"
        for agent in fast:
            stamp = truths[agent].stamp
            assert stamp["rollout_id"] in rollouts, f"{agent} stamped by {stamp['rollout_id']}"
            ours = [h for h in stamp["history"] if h["revision"] == head]
            assert len(ours) == 1, f"{agent}: {len(ours)} history entries for the head"
