"""Racing writers: a restore leaves a box another rollout moved on, and fencing numbers
keep an older writer off a box a newer one wrote (the laptop-and-CI case of design.md).

Each test stages the interleaving on FakeBoxes directly (the journeys' race tests run it
for real on the demo, where the timing decides which path is taken).
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

import pytest

from reconciler.engine.boxops import BoxOpError, MovedOn
from reconciler.engine.steps import ApplyJob, Crew, RestoreJob, apply_box, restore_box
from reconciler.model.box import Stamp, parse_stamp
from reconciler.plan.model import Activation, Delivery
from reconciler.render.stamp import already_there, make_stamp, next_fence, restore_refusal
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox, OpTarget

from .helpers import FLEET_ID, NEW_REV, OLD_REV, make_fleet, new_bytes, old_bytes, sha


def crew(clock: FakeClock, *, rollout: str = "r-laptop", fence: int = 5) -> Crew:
    return Crew(holder="laptop pid 1", rollout_id=rollout, fleet_id=FLEET_ID, clock=clock,
                fence=fence)  # fmt: skip


def job(name: str) -> ApplyJob:
    return ApplyJob(
        target_sha=sha(new_bytes(name)), pre_sha=sha(old_bytes(name)), delivery=Delivery.WRITE,
        activation=Activation.RELOAD, revision=NEW_REV, data=new_bytes(name),
        stamp_sha=sha(old_bytes(name)), stamp_revision=OLD_REV,
    )  # fmt: skip


def other_rollout_writes(box: FakeBox, clock: FakeClock, *, fence: int) -> bytes:
    """CI's rollout (another state dir) puts its own config and stamp on the box."""
    data = b'{"prompt": "from CI"}\n'
    box.put(box.config_path, data)
    box.loaded_sha = sha(data)
    stamp = make_stamp(
        fleet_id=FLEET_ID, agent=box.name, revision="rev-ci", config_sha256=sha(data),
        rollout_id="r-ci", outcome="applied", now=clock.now(), fence=fence,
    )  # fmt: skip
    box.put(f"{box.config_path}.stamp.json", stamp.to_bytes())
    return data


def stamp_of(box: FakeBox) -> dict[str, object]:
    raw = box.read(f"{box.config_path}.stamp.json")
    assert raw is not None
    return parse_stamp(raw).model_dump()


async def test_a_restore_leaves_a_box_another_rollout_moved_on() -> None:
    """The laptop applied, CI then wrote the box; the laptop's rollback must not put its old
    config back over CI's: MovedOn, and the box keeps CI's config, stamp and load."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    await apply_box(h, job(name), crew(fleet.clock, fence=5))
    ci = other_rollout_writes(box, fleet.clock, fence=6)
    with pytest.raises(MovedOn, match="r-ci"):
        back = RestoreJob(pre_sha=sha(old_bytes(name)), pre_revision=OLD_REV,
                          activation=Activation.RELOAD)  # fmt: skip
        await restore_box(h, back, crew(fleet.clock))
    assert box.read(box.config_path) == ci and box.loaded_sha == sha(ci)
    assert stamp_of(box)["rollout_id"] == "r-ci"
    assert box.read(h.paths.lease_dir / "lease.json") is None  # its lease is not left


async def test_an_older_writer_is_fenced_off_a_box_a_newer_rollout_stamped() -> None:
    """A stamp with a higher fencing number than ours: apply refuses before writing."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    stamp = make_stamp(
        fleet_id=FLEET_ID, agent=name, revision=OLD_REV, config_sha256=sha(old_bytes(name)),
        rollout_id="r-before", outcome="applied", now=fleet.clock.now(), fence=9,
    )  # fmt: skip
    box.put(f"{box.config_path}.stamp.json", stamp.to_bytes())
    with pytest.raises(MovedOn, match="fence 9 > ours 5"):
        await apply_box(h, job(name), crew(fleet.clock, fence=5))
    assert box.read(box.config_path) == old_bytes(name)


async def test_a_stamp_rewritten_while_we_held_the_box_is_not_overwritten() -> None:
    """Our lease was broken mid-apply and CI wrote the box: the stamp write is refused."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)

    stamp_path = h.paths.stamp
    reads = []

    def ci_before_our_stamp(op: str, target: OpTarget) -> Exception | None:
        if op == "read_file" and target == stamp_path:
            reads.append(target)
            if len(reads) == 2:  # the re-read right before our stamp write
                other_rollout_writes(box, fleet.clock, fence=6)
        return None

    box.fault = ci_before_our_stamp
    with pytest.raises(MovedOn, match="rewritten by r-ci"):
        await apply_box(h, job(name), crew(fleet.clock, fence=5))
    assert stamp_of(box)["rollout_id"] == "r-ci"


async def test_a_lease_of_a_newer_rollout_is_never_broken() -> None:
    """Even expired, a lease naming a higher fencing number is not ours to break."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    box.put(h.paths.lease_dir / "lease.json",
            b'{"holder": "ci", "rollout_id": "r-ci", "expires_at": "2000-01-01T00:00:00Z",'
            b' "fence": 8}\n')  # fmt: skip
    with pytest.raises(MovedOn, match="newer rollout"):
        await apply_box(h, job(name), crew(fleet.clock, fence=5))
    assert box.read(box.config_path) == old_bytes(name)


async def test_the_new_stamp_carries_the_fencing_number() -> None:
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    await apply_box(fleet.handle(name), job(name), crew(fleet.clock, fence=7))
    assert stamp_of(fleet.boxes[name])["fence"] == 7


def _stamp(clock: FakeClock, rollout: str, sha_: str, *, fence: int) -> Stamp:
    return make_stamp(
        fleet_id="f", agent="a", revision="r", config_sha256=sha_, rollout_id=rollout,
        outcome="applied", now=clock.now(), fence=fence,
    )  # fmt: skip


def test_next_fence_is_above_every_number_seen() -> None:
    clock = FakeClock()
    stamps = [_stamp(clock, "x", "0" * 64, fence=n) for n in (3, 11)]
    assert next_fence([*stamps, None]) == 12
    assert next_fence([None], floor=20) == 21
    assert next_fence([]) == 1


def test_restore_refusal_allows_its_own_and_the_pre_state() -> None:
    clock = FakeClock()
    pre = "1" * 64

    def stamp(rollout: str, sha_: str, fence: int = 0) -> Stamp:
        return _stamp(clock, rollout, sha_, fence=fence)

    assert restore_refusal(None, rollout_id="r1", pre_sha=pre, fence=1) is None
    assert restore_refusal(stamp("r1", "2" * 64), rollout_id="r1", pre_sha=pre, fence=1) is None
    assert restore_refusal(stamp("r0", pre), rollout_id="r1", pre_sha=pre, fence=1) is None
    assert "moved by rollout r2" in (
        restore_refusal(stamp("r2", "2" * 64), rollout_id="r1", pre_sha=pre, fence=1) or ""
    )
    assert "fence 4 > ours 1" in (
        restore_refusal(stamp("r1", "2" * 64, 4), rollout_id="r1", pre_sha=pre, fence=1) or ""
    )


async def test_a_config_dir_symlinked_out_of_the_allowed_paths_is_never_written() -> None:
    """The box's config directory is a symlink to /root/.ssh: realpath says so before the
    first write, and nothing is written (the box stays untouched: no restore needed)."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h = fleet.boxes[name], fleet.handle(name)
    box.symlinks[h.paths.config.parent] = PurePosixPath("/root/.ssh")
    inside = dataclasses.replace(job(name), allowed_paths=("/srv",))
    with pytest.raises(BoxOpError, match=r"resolves to /root/\.ssh.*nothing written") as err:
        await apply_box(h, inside, crew(fleet.clock))
    assert not err.value.step.touched  # type: ignore[union-attr]
    assert box.read(box.config_path) == old_bytes(name)
    assert not [op for op, _ in box.log if op in ("write_atomic", "link", "rename")][1:]


async def test_a_config_dir_inside_the_allowed_paths_is_written() -> None:
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    inside = dataclasses.replace(job(name), allowed_paths=("/srv",))
    await apply_box(fleet.handle(name), inside, crew(fleet.clock))
    assert fleet.on_new(name)


def test_a_box_is_already_there_only_with_the_same_secrets() -> None:
    """Same config sha and revision but a new secret value (its keyed fingerprint differs,
    or is unknown): not done, the secrets file must still be written."""
    clock = FakeClock()
    sha_ = "3" * 64
    stamp = make_stamp(fleet_id="f", agent="a", revision="r2", config_sha256=sha_,
                       rollout_id="r-ci", outcome="applied", now=clock.now(),
                       secrets_fingerprint="fp-old")  # fmt: skip
    assert already_there(stamp, sha_, sha=sha_, revision="r2")
    assert already_there(stamp, sha_, sha=sha_, revision="r2", secrets=(True, "fp-old"))
    assert not already_there(stamp, sha_, sha=sha_, revision="r2", secrets=(True, "fp-new"))
    assert not already_there(stamp, sha_, sha=sha_, revision="r2", secrets=(True, None))
    assert not already_there(stamp, sha_, sha=sha_, revision="r3")
    assert not already_there(stamp, "4" * 64, sha=sha_, revision="r2")
