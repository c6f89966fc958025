"""retire_box: the rotation's last step on a box leaves no mark anywhere in the stamp.

A finished rotation must stay finished: the newest history entry is the box's state now,
and a later rollback restores the stamp's secret state from the entry before its own; if
that entry kept `phase: promoted`, every apply after the rollback would be refused as
"a rotation is pending".
"""

from __future__ import annotations

from reconciler.engine.steps import Crew, retire_box
from reconciler.model.box import RotationMark, parse_stamp
from reconciler.render.stamp import SecretState, make_stamp, secrets_before
from reconciler.testing.clock import FakeClock

from .helpers import FLEET_ID, NEW_REV, make_fleet, new_bytes, sha

SECRET = "anthropic_api_key"
MARK = RotationMark(rotation_id="rot-1", phase="promoted", old="hmac:old", new="hmac:new")


def _crew(clock: FakeClock, rollout_id: str = "rot-1-retire") -> Crew:
    return Crew(holder="tester@localhost pid 1", rollout_id=rollout_id, fleet_id=FLEET_ID,
                clock=clock)  # fmt: skip


async def test_retire_clears_the_mark_in_the_stamp_and_its_newest_history_entry() -> None:
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    promoted = make_stamp(
        fleet_id=FLEET_ID, agent=name, revision=NEW_REV, config_sha256=sha(new_bytes(name)),
        rollout_id="r-promote", outcome="applied", now=fleet.clock.now(),
        secrets=SecretState("hmac:file", {}, {SECRET: MARK}),
    )  # fmt: skip
    box.put(h.paths.config, new_bytes(name))
    box.put(h.paths.stamp, promoted.to_bytes())

    assert await retire_box(h, _crew(fleet.clock), SECRET) is True

    raw = box.read(h.paths.stamp)
    assert raw is not None
    retired = parse_stamp(raw)
    assert retired.rotation == {}
    assert all(e.rotation == {} for e in retired.history[:1]), retired.history[0]
    # a later apply, rolled back: the state it restores has no rotation pending
    later = make_stamp(
        fleet_id=FLEET_ID, agent=name, revision="rev-3", config_sha256=sha(b"x"),
        rollout_id="r-later", outcome="applied", now=fleet.clock.now(), previous=retired,
        secrets=SecretState.of(retired),
    )  # fmt: skip
    assert secrets_before(later, "r-later").rotation == {}
    assert h.paths.lease_dir not in box.dirs, "the retire's lease is released"
