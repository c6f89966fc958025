"""Round trips per box, pinned: how many transport operations one apply_box and one
restore_box make, by kind, on a FakeBox.

These are numbers, not times: a change that adds an SFTP request or a remote command
to every box (say, a stat before each write) fails here visibly, even if the
loopback tests stay fast. To change them deliberately: make the change, run this file,
check that each new or removed operation is intended (the failing assertion shows
the counts; `box.log` lists the operations in order), update APPLY_TRIPS and
RESTORE_TRIPS, and say why in the commit message.

`rounds` (APPLY_ROUNDS, RESTORE_ROUNDS) pins the latency: how many round trips long
the longest chain of operations one after another is (FakeBox.rounds); operations in
flight together count one round. A change that serialises what was overlapped fails
there, even when the counts stay the same.

The box: managed (stamp of rev-1, old config loaded, no history directory yet, no
secrets file); the job: write the new config, reload, verify, stamp, its paths checked
against connection.allowed_paths (as every real run does). The agent reports its
health by URL, so `health` is an HTTP round trip, not a command.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import PurePosixPath

import pytest

from reconciler.engine.boxops import BoxOpError, RealPaths, together
from reconciler.engine.steps import ApplyJob, Crew, RestoreJob, apply_box, restore_box
from reconciler.plan.model import Activation, Delivery
from reconciler.rollout.phases import Outcome
from reconciler.testing.clock import FakeClock
from reconciler.transport.base import RemoteError
from reconciler.transport.fake import FakeBox, chain, fail_nth, fail_on, hang_on

from .helpers import (
    FLEET_ID,
    NEW_REV,
    OLD_REV,
    Fleet,
    make_fleet,
    new_bytes,
    old_bytes,
    reload_fails,
    sha,
)

# lease (mkdir + lease file), stamp and config read (CAS), where the writes land
# (realpath of the allowed path and of the config's directory), old config into history
# (stat + write), config write + hard link into history (stat + link), reload, one
# health answer (verify), stamp write, history prune (listdir), release (remove + rmdir)
APPLY_TRIPS = {
    "realpath": 2,  # the allowed path, the config's directory
    "mkdir": 1,
    "write_atomic": 4,  # lease file, old config into history, config, stamp
    "read_file": 3,  # stamp, config, the stamp again right before the stamp write (fencing)
    "stat": 2,  # history file of the old config, of the new one
    "link": 1,  # the new config into history
    "run": 1,  # reload
    "health": 1,  # verify
    "listdir": 1,  # prune history
    "remove": 1,  # lease file
    "rmdir": 1,  # lease directory
}
# mkdir, lease file, {stamp, config, realpath x2}, {stat x2}, old config into history,
# config, link, reload, health, stamp again, {stamp write, listdir}, remove, rmdir
APPLY_ROUNDS = 13
# lease (mkdir + lease file), stamp and config read, history copy read, link to a temp
# name + rename over the config, health (running the old one already?), reload, health
# (verify), stamp write, release (read the lease back, rmtree)
RESTORE_TRIPS = {
    "mkdir": 1,
    "write_atomic": 2,  # lease file, stamp
    "read_file": 5,  # stamp, config, history copy, stamp again (fencing), lease (ours?)
    "link": 1,  # history copy -> temp name
    "rename": 1,  # temp name -> config
    "health": 2,  # does it run the old config already?, verify
    "run": 1,  # reload
    "rmtree": 1,  # lease directory
}
# mkdir, lease file, {stamp, config, history copy, health}, link, rename, reload, health,
# stamp again, stamp write, lease, rmtree
RESTORE_ROUNDS = 11
ALLOWED = ("/srv",)  # every agent's config_path is /srv/<name>/config.json


def _crew(clock: FakeClock) -> Crew:
    return Crew(holder="tester@localhost pid 1", rollout_id="r-test", fleet_id=FLEET_ID,
                clock=clock)  # fmt: skip


def _job(name: str) -> ApplyJob:
    return ApplyJob(
        target_sha=sha(new_bytes(name)), pre_sha=sha(old_bytes(name)), delivery=Delivery.WRITE,
        activation=Activation.RELOAD, revision=NEW_REV, data=new_bytes(name),
        stamp_sha=sha(old_bytes(name)), stamp_revision=OLD_REV, allowed_paths=ALLOWED,
    )  # fmt: skip


def _one_login(fleet: Fleet) -> None:
    """Every agent of `fleet` reached by the same login (one host, several agents)."""
    for name, agent in fleet.agents.items():
        fleet.agents[name] = agent.model_copy(update={"host": "shared.test"})


async def test_one_apply_box_and_one_restore_box_make_the_pinned_round_trips() -> None:
    """apply_box: 18 operations (4 writes, 1 command); restore_box: 14 (2 writes, 1 command,
    no config byte sent). Both leave the box as intended, so the counts are of a real run."""
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    box, h, crew = fleet.boxes[name], fleet.handle(name), _crew(fleet.clock)

    await apply_box(h, _job(name), crew)
    assert fleet.on_new(name)
    assert dict(box.counts) == APPLY_TRIPS, box.log
    assert box.round_trips == 18
    assert box.rounds == APPLY_ROUNDS, box.log

    box.reset_counts()
    await restore_box(h, RestoreJob(pre_sha=sha(old_bytes(name)), pre_revision=OLD_REV,
                                    activation=Activation.RELOAD), crew)  # fmt: skip
    assert fleet.on_old(name)
    assert dict(box.counts) == RESTORE_TRIPS, box.log
    assert box.round_trips == 14
    assert box.rounds == RESTORE_ROUNDS, box.log
    assert not [op for op, path in box.log if op == "write_atomic" and path == box.config_path]


async def test_the_driver_adds_no_transport_operation_to_a_box_beyond_its_steps() -> None:
    """Through the Driver (apply, watch, soak, gates, then a rollback caused by another
    box), a wave-1 box sees exactly the operations of one apply_box and one restore_box,
    plus health answers for the checks: the driver's own work is health reads only."""
    fleet = make_fleet(2, waves=(1, "100%"))
    first, second = fleet.wave(0)[0], fleet.wave(1)[0]

    fleet.boxes[second].handler = reload_fails
    result = await fleet.run(allowed_paths=ALLOWED)
    assert result.outcome is Outcome.ROLLED_BACK
    counts = dict(fleet.boxes[first].counts)
    checks = counts.pop("health") - APPLY_TRIPS["health"] - RESTORE_TRIPS["health"]
    assert checks > 0  # the watch and the soak's samples
    steps = {k: APPLY_TRIPS.get(k, 0) + RESTORE_TRIPS.get(k, 0) for k in {**APPLY_TRIPS,
             **RESTORE_TRIPS}}  # fmt: skip
    steps.pop("health")
    assert counts == steps


async def test_boxes_sharing_a_login_resolve_the_allowed_path_once() -> None:
    """Within one run (one RealPaths), the allowed path's realpath is asked once per login;
    each box's own config directory is still resolved before its first write."""
    fleet = make_fleet(3, waves=("100%",))
    _one_login(fleet)
    crew = replace(_crew(fleet.clock), realpaths=RealPaths())
    first, *others = fleet.boxes
    await apply_box(fleet.handle(first), _job(first), crew)
    assert fleet.boxes[first].counts["realpath"] == 2
    for name in others:
        await apply_box(fleet.handle(name), _job(name), crew)
        assert fleet.on_new(name)
        box = fleet.boxes[name]
        assert [t for op, t in box.log if op == "realpath"] == [PurePosixPath(f"/srv/{name}")]
        assert (box.round_trips, box.rounds) == (17, APPLY_ROUNDS)
    # another login asks again
    alone = make_fleet(1, waves=("100%",))
    (name,) = alone.boxes
    await apply_box(alone.handle(name), _job(name), crew)
    assert alone.boxes[name].counts["realpath"] == 2


async def test_a_cached_allowed_path_never_lets_a_symlinked_box_directory_through() -> None:
    """A box whose config directory is a symlink out of /srv, on a login whose /srv was
    resolved for an earlier box, is refused before anything is written."""
    fleet = make_fleet(2, waves=("100%",))
    _one_login(fleet)
    crew = replace(_crew(fleet.clock), realpaths=RealPaths())
    first, second = fleet.boxes
    await apply_box(fleet.handle(first), _job(first), crew)
    box = fleet.boxes[second]
    box.symlinks[PurePosixPath(f"/srv/{second}")] = PurePosixPath("/root/.ssh")
    with pytest.raises(BoxOpError, match=r"resolves to /root/\.ssh.*nothing written"):
        await apply_box(fleet.handle(second), _job(second), crew)
    assert fleet.on_old(second)
    assert [op for op, _ in box.log if op in ("write_atomic", "link", "rename")] == [
        "write_atomic"  # the lease file
    ]


async def test_a_failed_realpath_is_not_kept_for_the_next_box() -> None:
    fleet = make_fleet(2, waves=("100%",))
    _one_login(fleet)
    crew = replace(_crew(fleet.clock), realpaths=RealPaths())
    first, second = fleet.boxes
    fleet.boxes[first].fault = fail_nth("realpath", 1, path="/srv")
    with pytest.raises(RemoteError):
        await apply_box(fleet.handle(first), _job(first), crew)
    await apply_box(fleet.handle(second), _job(second), crew)
    assert fleet.on_new(second)
    assert fleet.boxes[second].counts["realpath"] == 2


async def test_the_driver_resolves_a_shared_allowed_path_once_per_run() -> None:
    fleet = make_fleet(4, waves=(1, "100%"))
    _one_login(fleet)
    result = await fleet.run(allowed_paths=ALLOWED)
    assert result.outcome is Outcome.DONE
    asked = [t for b in fleet.boxes.values() for op, t in b.log if op == "realpath"]
    assert sorted(map(str, asked)) == ["/srv", *(f"/srv/{n}" for n in sorted(fleet.boxes))]


async def test_rounds_count_operations_one_after_another_and_overlapped_ones_once() -> None:
    """FakeBox.rounds: three reads in turn are three rounds, three at once one; a chain of
    two beside a single read is two."""
    box = FakeBox("b", files={"/a": b"1", "/b": b"2"})
    for p in ("/a", "/b", "/c"):
        await box.read_file(PurePosixPath(p))
    assert (box.round_trips, box.rounds) == (3, 3)

    box.reset_counts()
    await asyncio.gather(*(box.read_file(PurePosixPath(p)) for p in ("/a", "/b", "/c")))
    assert (box.round_trips, box.rounds) == (3, 1)

    async def chain() -> None:
        await box.stat(PurePosixPath("/a"))
        await box.read_file(PurePosixPath("/a"))

    box.reset_counts()
    await asyncio.gather(chain(), box.read_file(PurePosixPath("/b")))
    assert (box.round_trips, box.rounds) == (3, 2)


async def test_together_raises_the_first_failure_as_it_is_and_cancels_the_rest() -> None:
    """A failed request stops its siblings (a hung one is cancelled, not left running) and
    surfaces as the box's own error, not an exception group."""
    box = FakeBox("b", files={"/a": b"1"})
    box.fault = chain(hang_on("stat"), fail_on("read_file", RemoteError("b", "read", "gone")))
    with pytest.raises(RemoteError, match="gone"):
        await together(box.stat(PurePosixPath("/a")), box.read_file(PurePosixPath("/a")))
    assert box.cancelled == [("stat", PurePosixPath("/a"))]
    assert await together() == ()
    box.fault = None
    got = await together(box.read_file(PurePosixPath("/a")), box.mkdir(PurePosixPath("/d")))
    assert got == (b"1", True)
