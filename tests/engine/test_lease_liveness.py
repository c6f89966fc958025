"""Box leases and liveness: a dead holder's lease is broken at once, a live one is respected.

A lease names its holder's process (machine id, boot id, pid, start time) and carries a
heartbeat. On this machine a holder whose pid is gone, or whose pid now belongs to a
later process (another start time), is dead: its lease is broken without waiting. A
holder on another machine is judged by its heartbeat (dead when three periods old). A
lease written before these fields (no heartbeat) is judged by its expiry, as before.
Leases are staged on FakeBoxes; the holders are real child processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from reconciler.engine import boxops
from reconciler.engine.boxops import LEASE_FILE, BoxHandle, Lease, LeaseHeld, MovedOn, take_lease
from reconciler.journal import liveness
from reconciler.render.stamp import rfc3339
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox

from .helpers import make_fleet

OTHER_MACHINE = {"host": "ci-runner-9", "machine_id": "f" * 32, "boot_id": "b" * 36}


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A live lease is waited for ~1 s here (11 s in production) before LeaseHeld."""
    monkeypatch.setattr(boxops, "TORN_FRESH_S", 1.0)
    monkeypatch.setattr(boxops, "_TORN_POLL_S", 0.1)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this machine (not us), stopped after the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    """The pid of a process that ran on this machine and is gone."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def this_machine(pid: int, start_time: int | None) -> dict[str, object]:
    me = liveness.here()
    return {"host": me.host, "machine_id": me.machine_id, "boot_id": me.boot_id, "pid": pid,
            "start_time": start_time}  # fmt: skip


def stage(
    box: FakeBox,
    h: BoxHandle,
    now: datetime,
    *,
    heartbeat_age_s: float | None = 0.0,
    fence: int = 3,
    **identity: object,
) -> None:
    """Another rollout's lease on the box, expiring in 15 minutes."""
    doc: dict[str, object] = {
        "holder": f"someone@{identity.get('host', 'elsewhere')} pid {identity.get('pid', 1)}",
        "rollout_id": "r-other", "expires_at": rfc3339(now + timedelta(minutes=15)),
        "fence": fence, **identity,
    }  # fmt: skip
    if heartbeat_age_s is not None:
        doc["heartbeat_at"] = rfc3339(now - timedelta(seconds=heartbeat_age_s))
    box.put(h.paths.lease_dir / LEASE_FILE, json.dumps(doc).encode())


def one_box() -> tuple[FakeBox, BoxHandle, FakeClock]:
    fleet = make_fleet(1, waves=("100%",))
    (name,) = fleet.boxes
    return fleet.boxes[name], fleet.handle(name), fleet.clock


async def take(h: BoxHandle, clock: FakeClock, *, fence: int = 5) -> Lease:
    return await take_lease(h, holder="us@here pid 1", rollout_id="r-us", ttl_s=900,
                            now=clock.now(), fence=fence)  # fmt: skip


def lease_on(box: FakeBox, h: BoxHandle) -> Lease:
    raw = box.read(h.paths.lease_dir / LEASE_FILE)
    assert raw is not None
    lease = Lease.parse(raw)
    assert lease is not None
    return lease


async def test_a_lease_of_a_dead_local_process_is_broken_at_once() -> None:
    """The kill -9 case: the holder's pid is gone from this machine; no wait at all."""
    box, h, clock = one_box()
    stage(box, h, clock.now(), **this_machine(dead_pid(), None))
    await take(h, clock)
    assert box.counts["mkdir"] == 2  # refused once, broken, taken: not one poll of waiting
    mine = lease_on(box, h)
    assert (mine.rollout_id, mine.pid, mine.heartbeat_at) == ("r-us", os.getpid(), clock.now())
    assert mine.machine_id == liveness.machine_id() and mine.start_time is not None


async def test_a_lease_whose_pid_was_reused_is_broken(child: subprocess.Popen[bytes]) -> None:
    """The pid is alive, but that process started later than the holder did: pid reuse."""
    started = liveness.start_time(child.pid)
    assert started is not None
    box, h, clock = one_box()
    stage(box, h, clock.now(), **this_machine(child.pid, started - 1))
    await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-us"
    assert box.counts["mkdir"] == 2


async def test_a_lease_of_a_live_local_process_is_respected(
    child: subprocess.Popen[bytes],
) -> None:
    """Same pid, same start time: the holder runs; waited for, then refused, left alone."""
    box, h, clock = one_box()
    stage(box, h, clock.now(), heartbeat_age_s=600, **this_machine(child.pid,
          liveness.start_time(child.pid)))  # fmt: skip
    with pytest.raises(LeaseHeld, match="r-other"):
        await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-other"


async def test_another_machines_lease_with_a_fresh_heartbeat_is_respected() -> None:
    box, h, clock = one_box()
    stage(box, h, clock.now(), heartbeat_age_s=5, pid=os.getpid(), **OTHER_MACHINE)
    with pytest.raises(LeaseHeld, match=r"r-other .*heartbeat"):
        await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-other"


async def test_another_machines_lease_with_a_stale_heartbeat_is_broken() -> None:
    """Three periods (30 s) without a beat: its holder is dead, although not expired."""
    box, h, clock = one_box()
    stale = liveness.STALE_AFTER_S + 1
    stage(box, h, clock.now(), heartbeat_age_s=stale, pid=4242, **OTHER_MACHINE)
    await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-us"
    assert box.counts["mkdir"] == 2


async def test_an_old_lease_without_heartbeat_is_judged_by_its_expiry() -> None:
    """No heartbeat and no identity (an older reconciler on another host): alive until it
    expires, as before; once expired, broken."""
    box, h, clock = one_box()
    stage(box, h, clock.now(), heartbeat_age_s=None)
    with pytest.raises(LeaseHeld):
        await take(h, clock)
    clock.advance(16 * 60)
    await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-us"


async def test_an_old_lease_of_a_dead_pid_on_this_host_is_broken() -> None:
    """An older lease names its holder only as user@host pid N: the old rule still holds."""
    box, h, clock = one_box()
    stage(box, h, clock.now(), heartbeat_age_s=None, host=socket.gethostname(), pid=dead_pid())
    raw = json.loads(box.read(h.paths.lease_dir / LEASE_FILE) or b"{}")
    for key in ("host", "pid"):
        raw.pop(key)
    box.put(h.paths.lease_dir / LEASE_FILE, json.dumps(raw).encode())
    await take(h, clock)
    assert lease_on(box, h).rollout_id == "r-us"


async def test_a_dead_holders_lease_with_a_higher_fence_is_never_broken() -> None:
    box, h, clock = one_box()
    stage(box, h, clock.now(), fence=9, **this_machine(dead_pid(), None))
    with pytest.raises(MovedOn, match="fence 9 > ours 5"):
        await take(h, clock, fence=5)
    assert lease_on(box, h).rollout_id == "r-other"


def test_a_lease_reads_and_writes_its_new_fields_and_old_ones_still_parse() -> None:
    now = FakeClock().now()
    lease = Lease.ours("us@here pid 1", "r-us", now=now, ttl_s=60, fence=2)
    doc = json.loads(lease.to_bytes())
    assert doc["heartbeat_at"] == rfc3339(now) and doc["pid"] == os.getpid()
    assert Lease.parse(lease.to_bytes()) == lease
    old = Lease.parse(b'{"holder": "a@b pid 7", "rollout_id": "r", "expires_at": '
                      b'"2026-01-01T00:00:00Z"}')  # fmt: skip
    assert old is not None
    assert (old.heartbeat_at, old.host, old.pid, old.fence, old.start_time) == (
        None, "b", 7, 0, None)  # fmt: skip
