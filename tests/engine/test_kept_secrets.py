"""A rollout that changes a box's secrets file keeps the previous one on the box (0600,
named by keyed HMAC, or by the rollout id without a fleet key) until it ends, so that a
resume after a crash can put the old values back; then the copy leaves the box."""

from __future__ import annotations

import hashlib

from reconciler.engine import boxops
from reconciler.engine.steps import ApplyJob, Crew, RestoreJob, apply_box, restore_box
from reconciler.plan.model import Activation, Delivery

from .helpers import FLEET_ID, NEW_REV, OLD_REV, make_fleet, new_bytes, old_bytes, sha

OLD_SECRETS = b'{"kb_token": "old-value"}\n'
NEW_SECRETS = b'{"kb_token": "new-value"}\n'


async def test_previous_secrets_are_kept_for_the_rollout_and_put_back_by_a_resume() -> None:
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    box.put(h.paths.secrets, OLD_SECRETS)
    crew = Crew(holder="t", rollout_id="r-1", fleet_id=FLEET_ID, clock=fleet.clock)
    job = ApplyJob(
        target_sha=sha(new_bytes(name)), pre_sha=sha(old_bytes(name)), delivery=Delivery.WRITE,
        activation=Activation.RELOAD, revision=NEW_REV, data=new_bytes(name),
        stamp_sha=sha(old_bytes(name)), stamp_revision=OLD_REV, secrets=NEW_SECRETS,
    )  # fmt: skip
    await apply_box(h, job, crew)
    kept = boxops.kept_secrets_path(h, "r-1")
    assert box.read(h.paths.secrets) == NEW_SECRETS
    assert box.read(kept) == OLD_SECRETS and box.files[kept].mode == 0o600
    assert "old-value" not in str(kept) and "r-1" in kept.name

    # the run died; a resume (which never saw the old values) finds them on the box
    back = RestoreJob(pre_sha=sha(old_bytes(name)), pre_revision=OLD_REV,
                      activation=Activation.RELOAD, look_for_kept_secrets=True)  # fmt: skip
    await restore_box(h, back, crew)
    assert box.read(h.paths.secrets) == OLD_SECRETS
    assert fleet.on_old(name)

    await boxops.drop_kept_secrets(h, "r-1")
    assert box.read(kept) is None
    await boxops.drop_kept_secrets(h, "r-1")  # gone already: fine


async def test_a_finished_rollout_leaves_no_copy_of_previous_secrets() -> None:
    fleet = make_fleet(2, waves=(1, "100%"))
    for name, box in fleet.boxes.items():
        box.put(fleet.handle(name).paths.secrets, OLD_SECRETS)
    targets = {a: t.__class__(t.handle, t.data, NEW_SECRETS) for a, t in fleet.targets().items()}
    driver = fleet.driver()
    driver.targets = targets
    result = await driver.run()
    assert str(result.outcome) == "done", fleet.recorder.notes
    for name, box in fleet.boxes.items():
        h = fleet.handle(name)
        assert box.read(h.paths.secrets) == NEW_SECRETS
        assert box.read(boxops.kept_secrets_path(h, result.rollout_id)) is None


KEY = b"fleet-key-for-the-test"


async def test_with_a_fleet_key_the_kept_copy_is_named_by_keyed_hmac() -> None:
    """The name carries neither the rollout id nor a plain hash: HMAC(fleet key, rollout id +
    agent), so it differs per agent and per key; resume, given the key, finds it."""
    fleet = make_fleet(2, waves=("100%",))
    first, second = sorted(fleet.boxes)
    box, h = fleet.boxes[first], fleet.handle(first)
    box.put(h.paths.secrets, OLD_SECRETS)
    crew = Crew(holder="t", rollout_id="r-1", fleet_id=FLEET_ID, clock=fleet.clock,
                fleet_key=KEY)  # fmt: skip
    assert KEY.decode() not in repr(crew)
    job = ApplyJob(
        target_sha=sha(new_bytes(first)), pre_sha=sha(old_bytes(first)),
        delivery=Delivery.WRITE, activation=Activation.RELOAD, revision=NEW_REV,
        data=new_bytes(first), stamp_sha=sha(old_bytes(first)), stamp_revision=OLD_REV,
        secrets=NEW_SECRETS,
    )  # fmt: skip
    await apply_box(h, job, crew)
    kept = boxops.kept_secrets_path(h, "r-1", KEY)
    assert box.read(kept) == OLD_SECRETS and box.files[kept].mode == 0o600
    assert "r-1" not in kept.name
    assert box.read(boxops.kept_secrets_path(h, "r-1")) is None  # not the unkeyed name
    # a plain hash of what went in is not the name either
    assert hashlib.sha256(b"r-1" + first.encode()).hexdigest()[:32] not in kept.name
    assert kept != boxops.kept_secrets_path(h, "r-1", b"another key")
    assert kept.name != boxops.kept_secrets_path(fleet.handle(second), "r-1", KEY).name

    # a resume (a new process: a new Crew with the same key) finds and restores them
    again = Crew(holder="t2", rollout_id="r-1", fleet_id=FLEET_ID, clock=fleet.clock,
                 fleet_key=KEY)  # fmt: skip
    back = RestoreJob(pre_sha=sha(old_bytes(first)), pre_revision=OLD_REV,
                      activation=Activation.RELOAD, look_for_kept_secrets=True)  # fmt: skip
    await restore_box(h, back, again)
    assert box.read(h.paths.secrets) == OLD_SECRETS
    await boxops.drop_kept_secrets(h, "r-1", KEY)
    assert box.read(kept) is None


def test_an_empty_fleet_key_is_no_key() -> None:
    fleet = make_fleet(1, waves=("100%",))
    h = fleet.handle(next(iter(fleet.boxes)))
    assert boxops.kept_secrets_path(h, "r-1", b"") == boxops.kept_secrets_path(h, "r-1")
