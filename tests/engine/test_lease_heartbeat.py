"""The heartbeat of a held lease really advances: during a long apply, and for a box whose
apply failed after a write until its restore. A fast apply is never renewed (the pinned
round trips of test_round_trips.py hold).

Real time here (the keeper paces itself with real sleeps, by design); the heartbeat
period is shortened to a fraction of a second.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import PurePosixPath

from reconciler.engine.boxops import LEASE_FILE, Lease
from reconciler.engine.clock import SystemClock
from reconciler.engine.steps import ApplyJob, Crew, apply_box
from reconciler.model.box import Health
from reconciler.plan.model import Activation, Delivery
from reconciler.rollout.phases import Outcome
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox, OpTarget, report_state

from .helpers import FLEET_ID, NEW_REV, OLD_REV, make_fleet, new_bytes, old_bytes, reload_fails, sha

BEAT_S = 0.2


def lease_writes(box: FakeBox, lease_path: PurePosixPath) -> int:
    return sum(1 for op, target in box.log if op == "write_atomic" and target == lease_path)


async def test_the_heartbeat_advances_during_a_long_verify() -> None:
    """The agent takes ~1.3 s to load the new config: the lease is rewritten every period
    with a later heartbeat, then released."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    lease_path = h.paths.lease_dir / LEASE_FILE
    beats: list[datetime] = []
    loads_at = time.monotonic() + 1.3

    def slow_to_load(b: FakeBox) -> Health:
        raw = b.read(lease_path)
        lease = Lease.parse(raw) if raw is not None else None
        if lease is not None and lease.heartbeat_at is not None:
            beats.append(lease.heartbeat_at)
        health = report_state(b)
        if time.monotonic() < loads_at:
            return health.model_copy(update={"loaded_sha256": sha(old_bytes(name))})
        return health

    box.health = slow_to_load
    crew = Crew(holder="tester@localhost pid 1", rollout_id="r-test", fleet_id=FLEET_ID,
                clock=SystemClock(), verify_timeout_s=10.0, heartbeat_s=BEAT_S)  # fmt: skip
    job = ApplyJob(
        target_sha=sha(new_bytes(name)), pre_sha=sha(old_bytes(name)), delivery=Delivery.WRITE,
        activation=Activation.RELOAD, revision=NEW_REV, data=new_bytes(name),
        stamp_sha=sha(old_bytes(name)), stamp_revision=OLD_REV,
    )  # fmt: skip
    await apply_box(h, job, crew)
    assert fleet.on_new(name)
    assert lease_writes(box, lease_path) >= 4  # the take, then a beat every 0.2 s of 1.3 s
    assert beats == sorted(beats) and beats[-1] > beats[0]
    assert box.read(lease_path) is None  # released, and no late beat brought it back


async def test_a_failed_box_keeps_a_beating_lease_until_its_restore() -> None:
    """A box's reload fails after its write: the box keeps the rollout's lease (evidence for
    a resume), still kept by the driver when its restore begins, and renewed while the
    (slow) restore runs, until the restore releases it."""
    fleet = make_fleet(1, waves=("100%",))
    (failed,) = fleet.boxes
    box = fleet.boxes[failed]
    box.handler = reload_fails
    lease_dir = fleet.handle(failed).paths.lease_dir
    lease_path = lease_dir / LEASE_FILE
    driver = fleet.driver(lease_heartbeat_s=BEAT_S)
    kept_at_restore: list[bool] = []

    def watch(op: str, target: OpTarget) -> Exception | None:
        if op == "run":  # the reload that fails: from now on the box answers slowly
            box.latency = 0.15
        if op == "mkdir" and target == lease_dir and box.latency:  # the restore's take
            kept_at_restore.append(failed in driver.keeper.held())
        return None

    box.fault = watch
    result = await driver.run()
    assert result.outcome is Outcome.ROLLED_BACK
    assert fleet.on_old(failed)
    assert kept_at_restore == [True]
    renewals = lease_writes(box, lease_path) - 2  # the apply's and the restore's takes
    assert renewals >= 2, box.log
    assert box.read(lease_path) is None  # released by the restore, not brought back
    assert driver.keeper.held() == []


async def test_a_fast_apply_is_never_renewed() -> None:
    """With the production period (10 s), an apply of a few milliseconds writes its lease
    once: the heartbeat adds no round trip."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    result = await fleet.run()
    assert result.outcome is Outcome.DONE
    box = fleet.boxes[name]
    assert lease_writes(box, fleet.handle(name).paths.lease_dir / LEASE_FILE) == 1
    assert isinstance(fleet.clock, FakeClock) and not [s for s in fleet.clock.sleeps if s == 10.0]
