"""A config_path move through the driver: written and stamped at the new path, the old
path cleared only once the rollout is done; a rollback removes the new path's files (ours
only) and leaves the old path as it was.

Unit tests of the driver on the fake transport: soak 0 and the helpers' gates are enough,
since what is judged here is where the files end up; the move journey
(tests/journeys/test_config_path_move.py) runs with the demo repo's gates on."""

from __future__ import annotations

from pathlib import PurePosixPath

from reconciler.engine.boxops import BoxHandle
from reconciler.engine.driver import Target
from reconciler.engine.steps import Crew, clear_former
from reconciler.model.box import BoxPaths, parse_stamp
from reconciler.model.fleet import Rollout as RolloutPolicy
from reconciler.plan import make_plan

from .helpers import FLEET_ID, GATES, NEW_REV, Fleet, change_of, make_fleet, new_bytes, old_bytes

NAME = "agent-00"


def moved_fleet(*, agent_follows: bool) -> tuple[Fleet, BoxPaths, BoxPaths]:
    """One box whose agent's config moves from /srv/agent-00/config.json to next.json.
    `agent_follows`: the agent reads the new path (redeployed), else still the old one."""
    fleet = make_fleet(1, waves=("100%",), soak_s=0.0)
    old_agent = fleet.agents[NAME]
    new_path = str(PurePosixPath(old_agent.config_path).with_name("next.json"))
    fleet.agents[NAME] = old_agent.model_copy(update={"config_path": new_path})
    change = change_of(old_agent).model_copy(
        update={"moved_from": old_agent.config_path, "config_path": new_path}
    )
    fleet.plan = make_plan(
        [change], fleet_id=FLEET_ID, target_revision=NEW_REV,
        policy=RolloutPolicy(waves=["100%"], soak_s=0.0, failure_budget=0), gates=GATES,
    )  # fmt: skip
    box = fleet.boxes[NAME]
    box.put(BoxPaths.of(old_agent.config_path).history_file("0" * 64), b"kept")
    if agent_follows:
        box.config_path = PurePosixPath(new_path)
    return fleet, BoxPaths.of(old_agent.config_path), BoxPaths.of(new_path)


def targets(fleet: Fleet, old: BoxPaths) -> dict[str, Target]:
    box = fleet.boxes[NAME]
    former = fleet.agents[NAME].model_copy(update={"config_path": str(old.config)})
    h = fleet.handle(NAME)
    return {NAME: Target(h, new_bytes(NAME), former=BoxHandle(former, box, box.fetch_health))}


async def test_a_done_move_writes_the_new_path_then_clears_the_old() -> None:
    fleet, old, new = moved_fleet(agent_follows=True)
    driver = fleet.driver()
    driver.targets = targets(fleet, old)
    result = await driver.run()
    assert str(result.outcome) == "done", fleet.recorder.notes
    box = fleet.boxes[NAME]
    assert box.read(new.config) == new_bytes(NAME)
    stamp = parse_stamp(box.read(new.stamp) or b"")
    assert (stamp.agent, stamp.revision, stamp.outcome) == (NAME, NEW_REV, "applied")
    assert stamp.history and stamp.history[-1].rollout_id == "r-before"  # carried on
    gone = [p for p in (old.config, old.stamp, old.history_file("0" * 64)) if box.read(p)]
    assert not gone, gone
    (moved,) = fleet.notes("box.moved")
    assert (moved["old"], moved["new"]) == (str(old.config), str(new.config))
    assert str(old.config) in str(moved["removed_from_old_path"])


async def test_a_rolled_back_move_removes_the_new_path_and_keeps_the_old() -> None:
    """The agent never loads the new file (it still reads the old path): verify fails,
    the rollout rolls back; the old path is exactly as before, the new one is gone."""
    fleet, old, new = moved_fleet(agent_follows=False)
    box = fleet.boxes[NAME]
    old_stamp = box.read(old.stamp)
    driver = fleet.driver()
    driver.targets = targets(fleet, old)
    result = await driver.run()
    assert str(result.outcome) == "rolled-back", fleet.recorder.notes
    assert box.read(old.config) == old_bytes(NAME)
    assert (
        parse_stamp(box.read(old.stamp) or b"").config_sha256
        == parse_stamp(old_stamp or b"").config_sha256
    )
    assert box.read(old.history_file("0" * 64)) == b"kept"
    for path in (new.config, new.stamp):
        assert box.read(path) is None, f"{path} left behind"
    assert not fleet.notes("box.moved")


async def test_an_old_path_stamped_for_another_agent_is_left_alone() -> None:
    fleet, old, _new = moved_fleet(agent_follows=True)
    box = fleet.boxes[NAME]
    other = fleet.agents[NAME].model_copy(update={"name": "someone-else"})
    crew = Crew(holder="t", rollout_id="r-1", fleet_id=FLEET_ID, clock=fleet.clock)
    former = other.model_copy(update={"config_path": str(old.config)})
    assert await clear_former(BoxHandle(former, box, box.fetch_health), crew) == []
    assert box.read(old.config) == old_bytes(NAME) and box.read(old.stamp) is not None
