"""A rollout that changes a box's secrets file keeps the previous one on the box (0600,
named by the rollout id) until it ends, so that a resume after a crash can put the old
values back; then the copy leaves the box."""

from __future__ import annotations

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
