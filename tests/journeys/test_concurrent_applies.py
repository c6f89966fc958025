"""Journey 7: two applies of the same head, from two machines (two state dirs), at once.

Their fleet locks are separate (two journals), so only the per-box leases and the stamp
compare-and-swap stand between them. Expected: exactly one of them writes each box (every
changed box reloaded once, its stamp and its history naming one rollout), no box on a
mixed revision (all on the head), the winner exits 0, the loser exits 1 with nothing
changed and no incident report in its state dir.
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
        assert sorted(r.rc for r in results) == [0, 1], [r.rc for r in results]
        win = 0 if results[0].rc == 0 else 1
        winner, loser = results[win], results[1 - win]
        rollout = (winner.first("rollout.started") or {}).get("rollout_id")
        assert rollout, "the winner printed no rollout.started"
        assert loser.first("box.applied") is None, "the loser applied a box"
        assert loser.first("box.restored") is None, "the loser restored a box"
        assert not (states[1 - win] / "incidents").exists() or not any(
            (states[1 - win] / "incidents").iterdir()
        ), "an incident report in the loser's state dir"
        truths = assert_converged(demo, head, agents=fast, outcome="applied")
        after = demo.all_counters()
        reloads = {a: after[a]["reloads"] - before[a]["reloads"] for a in demo.agents}
        assert reloads == {a: int(a in fast) for a in demo.agents}, f"reloads: {reloads}"
        for agent in fast:
            stamp = truths[agent].stamp
            assert stamp["rollout_id"] == rollout, f"{agent} stamped by {stamp['rollout_id']}"
            ours = [h for h in stamp["history"] if h["revision"] == head]
            assert len(ours) == 1, f"{agent}: {len(ours)} history entries for the head"
