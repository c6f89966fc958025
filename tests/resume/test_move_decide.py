"""recovery.decide for a move cut short (pure): the new path kept when the rollout may keep
it, else the box judged at its old path; an old path is a leftover only when the new stamp
carries it on."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.model.box import Stamp
from reconciler.render.stamp import make_stamp
from reconciler.rollout.recovery import (
    Action,
    BoxGoal,
    BoxSeen,
    Mode,
    Unfinished,
    decide,
    left_over,
    moved_goal,
)

A, FLEET, RID = "agent-1", "fleet-1", "r-2"
OLD_SHA, NEW_SHA = "a" * 64, "b" * 64
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(sha: str, rollout: str, previous: Stamp | None = None, fence: int = 1) -> Stamp:
    return make_stamp(fleet_id=FLEET, agent=A, revision=f"rev-{rollout}", config_sha256=sha,
                      rollout_id=rollout, outcome="applied", now=NOW, previous=previous,
                      keep=5, fence=fence)  # fmt: skip


OLD_STAMP = stamp(OLD_SHA, "r-1")


def on(s: Stamp | None, sha: str | None) -> BoxSeen:
    return BoxSeen(A, stamp=s, file_sha=sha, loaded_sha=sha or OLD_SHA, alive=True)


def unfinished(pre: str | None = OLD_SHA, passed: frozenset[str] | None = None) -> Unfinished:
    goal = BoxGoal(A, pre, "rev-r-1", NEW_SHA, moved_from="/etc/agent/config.yaml")
    return Unfinished(RID, FLEET, "rev-r-2", {A: goal}, "journal", passed=passed)


def test_a_move_not_yet_stamped_is_kept_at_its_old_path() -> None:
    old = {A: on(OLD_STAMP, OLD_SHA)}
    new = {A: on(None, NEW_SHA)}  # written at the new path, not stamped
    for mode in Mode:
        assert decide(unfinished(), new, mode=mode, old=old) == {A: Action.KEEP_OLD}
    # without the old path's view the same box needs a restore at the new path
    assert decide(unfinished(), new, mode=Mode.SETTLE) == {A: Action.RESTORE}


def test_a_stamped_move_is_kept_when_the_mode_keeps_it() -> None:
    moved = stamp(NEW_SHA, RID, OLD_STAMP, fence=2)
    new = {A: BoxSeen(A, stamp=moved, file_sha=NEW_SHA, loaded_sha=NEW_SHA, alive=True)}
    old = {A: on(OLD_STAMP, OLD_SHA)}
    assert decide(unfinished(), new, mode=Mode.FINISH, old=old) == {A: Action.KEEP_NEW}
    assert decide(unfinished(passed=frozenset()), new, mode=Mode.SETTLE, old=old) == {
        A: Action.KEEP_OLD
    }
    assert decide(unfinished(), new, mode=Mode.ROLLBACK, old=old) == {A: Action.KEEP_OLD}


def test_an_old_path_changed_since_is_restored_there_or_left_to_a_human() -> None:
    old = {A: BoxSeen(A, stamp=OLD_STAMP, file_sha="c" * 64, loaded_sha=OLD_SHA, alive=True)}
    new = {A: on(None, None)}
    assert decide(unfinished(), new, mode=Mode.SETTLE, old=old) == {A: Action.RESTORE}
    old = {A: BoxSeen(A, error="connection refused")}
    assert decide(unfinished(), new, mode=Mode.SETTLE, old=old) == {A: Action.UNREACHABLE}


def test_the_pre_change_config_is_read_at_the_old_path_without_a_journal() -> None:
    goal = BoxGoal(A, None, None, NEW_SHA)
    got = moved_goal(goal, on(OLD_STAMP, OLD_SHA))
    assert (got.pre_sha, got.pre_revision, got.target_sha) == (OLD_SHA, "rev-r-1", NEW_SHA)
    known = BoxGoal(A, "d" * 64, "rev-x", NEW_SHA)
    assert moved_goal(known, on(OLD_STAMP, OLD_SHA)) == known


def test_an_old_path_is_a_leftover_only_when_the_new_stamp_carries_it_on() -> None:
    moved = stamp(NEW_SHA, RID, OLD_STAMP, fence=2)
    assert left_over(moved, OLD_STAMP, agent=A, fleet_id=FLEET)
    unrelated = stamp(NEW_SHA, RID, None, fence=2)  # written without the old history
    assert not left_over(unrelated, OLD_STAMP, agent=A, fleet_id=FLEET)
    assert not left_over(moved, OLD_STAMP, agent="agent-2", fleet_id=FLEET)
    assert not left_over(moved, OLD_STAMP, agent=A, fleet_id="other")
    assert not left_over(OLD_STAMP, moved, agent=A, fleet_id=FLEET)  # older never clears newer
    assert not left_over(None, OLD_STAMP, agent=A, fleet_id=FLEET)
