"""The fleet lock's liveness: a holder is (machine id, boot id, pid, start time) + heartbeat.

On this machine a holder whose process is gone, whose pid was reused by a later process,
or that ran before a reboot is taken over at once; a holder on another machine only when
its heartbeat is three renewal periods old. State files of schema 1 (no identity, no
heartbeat) still open and read as before.
"""

from __future__ import annotations

import dataclasses
import getpass
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.journal import Holder, LockHeld, SqliteLock, liveness
from reconciler.journal.db import FILE_NAME, SCHEMA_VERSION
from reconciler.journal.takeover import acquire_or_take_over
from reconciler.testing.clock import FakeClock

from .conftest import AnyLock, Backend

ME = Holder.here()
REMOTE = Holder(user="ci", host="runner-7", pid=202, rollout_id="r-ci", machine_id="f" * 32,
                boot_id="b" * 36, start_time=12345)  # fmt: skip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lock(backend: Backend, clock: FakeClock) -> Iterator[AnyLock]:
    """The lock on each backend (the contract: tests/journal/conftest.py)."""
    lk = backend.lock(now=clock.now, sleep=clock.advance, monotonic=clock.monotonic)
    yield lk
    lk.close()


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def local(pid: int, start_time: int | None, *, boot_id: str | None = None) -> Holder:
    """Another holder on this machine."""
    return Holder(user="other", host=ME.host, pid=pid, machine_id=ME.machine_id,
                  boot_id=boot_id or ME.boot_id, start_time=start_time)  # fmt: skip


def take(lock: AnyLock, clock: FakeClock) -> tuple[object, object]:
    return acquire_or_take_over(lock, "acme", ME, ttl_s=30, now=clock.now())


def test_this_process_is_identified_fully() -> None:
    assert (ME.pid, ME.machine_id) == (liveness.here().pid, liveness.machine_id())
    assert ME.start_time == liveness.start_time(ME.pid) is not None
    assert not liveness.holder_gone(ME)


def test_a_lock_whose_pid_was_reused_is_taken_over(
    lock: AnyLock, clock: FakeClock, child: subprocess.Popen[bytes]
) -> None:
    """The holder's pid is alive but belongs to a process started later: taken at once."""
    started = liveness.start_time(child.pid)
    assert started is not None
    held = lock.acquire("acme", local(child.pid, started - 100), ttl_s=600)
    ours, broken = take(lock, clock)
    assert broken == held
    assert lock.holder("acme") == ours


def test_a_lock_of_a_live_local_process_is_respected(
    lock: AnyLock, clock: FakeClock, child: subprocess.Popen[bytes]
) -> None:
    held = lock.acquire("acme", local(child.pid, liveness.start_time(child.pid)), ttl_s=600)
    clock.advance(300)  # no heartbeat for 5 minutes: on this machine the process decides
    with pytest.raises(LockHeld):
        take(lock, clock)
    assert lock.holder("acme") == held


def test_a_lock_taken_before_a_reboot_is_taken_over(lock: AnyLock, clock: FakeClock) -> None:
    """Same machine, another boot id: that process is gone, whatever the pid says now."""
    lock.acquire("acme", local(ME.pid, ME.start_time, boot_id="0" * 36), ttl_s=600)
    _, broken = take(lock, clock)
    assert broken is not None


def test_a_remote_holder_with_a_fresh_heartbeat_is_respected(
    lock: AnyLock, clock: FakeClock
) -> None:
    lease = lock.acquire("acme", REMOTE, ttl_s=600)
    for _ in range(6):  # it renews every 10 s for a minute
        clock.advance(10)
        lease = lock.renew(lease, ttl_s=600)
    assert lease.heartbeat == clock.now()
    with pytest.raises(LockHeld):
        take(lock, clock)


def test_a_remote_holder_whose_heartbeat_is_three_periods_old_is_taken_over(
    lock: AnyLock, clock: FakeClock
) -> None:
    """Not expired (ttl 600 s) but silent for more than 30 s: dead."""
    held = lock.acquire("acme", REMOTE, ttl_s=600)
    clock.advance(liveness.STALE_AFTER_S - 1)
    with pytest.raises(LockHeld):
        take(lock, clock)
    clock.advance(2)
    _, broken = take(lock, clock)
    assert broken == held
    assert held.dead(clock.now()) is not None


def test_the_identity_and_heartbeat_survive_the_database(lock: AnyLock, clock: FakeClock) -> None:
    lease = lock.bind(lock.acquire("acme", ME, ttl_s=30), "r-1")
    stored = lock.holder("acme")
    assert stored is not None
    assert stored.holder == dataclasses.replace(ME, rollout_id="r-1")
    assert stored.heartbeat == lease.since == clock.now()


OLD_LOCKS = """
CREATE TABLE locks (
    fleet_id TEXT PRIMARY KEY, lock_id TEXT NOT NULL UNIQUE, user TEXT NOT NULL,
    host TEXT NOT NULL, pid INTEGER NOT NULL, rollout_id TEXT, since REAL NOT NULL,
    expires REAL NOT NULL
)"""


def test_a_schema_1_state_file_is_migrated_and_its_lock_read_by_the_old_rule(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A lock row of an older reconciler (no identity, no heartbeat) reads as unknown: a
    remote holder is judged by its expiry; a local one by its pid (old rule)."""
    tmp_path.chmod(0o700)
    path = tmp_path / FILE_NAME
    conn = sqlite3.connect(path)
    conn.execute(OLD_LOCKS)
    since = clock.now().timestamp()
    conn.execute("INSERT INTO locks VALUES ('acme', 'L1', 'ci', 'runner-7', 202, NULL, ?, ?)",
                 (since, since + 600))  # fmt: skip
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    path.chmod(0o600)

    lock = SqliteLock(tmp_path, now=clock.now)
    try:
        held = lock.holder("acme")
        assert held is not None and held.lock_id == "L1"
        assert (held.heartbeat, held.holder.machine_id, held.holder.start_time) == (
            None, None, None)  # fmt: skip
        clock.advance(300)
        with pytest.raises(LockHeld):  # no heartbeat known: only its expiry counts
            take(lock, clock)
        clock.advance(301)
        ours, _ = take(lock, clock)
        assert lock.holder("acme") == ours
    finally:
        lock.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {row[1] for row in check.execute("PRAGMA table_info(locks)")}
    check.close()
    assert {"machine_id", "boot_id", "start_time", "heartbeat"} <= columns


def test_holder_here_without_a_passwd_entry_or_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers: no passwd entry for the uid and USER unset: the uid stands in."""

    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_user)
    holder = Holder.here()
    assert holder.user.isdigit() and holder.start_time is not None
    assert not liveness.holder_gone(holder)


def test_the_start_time_is_field_22_even_when_the_process_name_has_parentheses() -> None:
    """/proc/PID/stat fields are counted after the last ')' (a name may hold ') (')."""
    line = b"4242 (evil) (name x) S 1 4242 4242 0 -1 4194560 " + b"0 " * 12 + b"987654 1 2\n"
    assert liveness.start_ticks(line) == 987654
    assert liveness.start_ticks(b"garbage") is None
    assert liveness.start_time(2**22 + 12345) is None  # no such process
    assert liveness.start_time(ME.pid) == liveness.start_ticks(
        Path(f"/proc/{ME.pid}/stat").read_bytes()
    )
