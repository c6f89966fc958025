"""The fleet lock contract, on both backends (SQLite, PostgreSQL: tests/journal/conftest.py):
one holder at a time, named when refused, expiring, across processes."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.journal import Holder, LockHeld, LockLost, open_state
from reconciler.testing.clock import FakeClock

from .conftest import AnyLock, Backend, open_location

ALICE = Holder(user="alice", host="laptop", pid=101)
CI = Holder(user="ci", host="runner-7", pid=202, rollout_id="r-ci")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lock(backend: Backend, clock: FakeClock) -> Iterator[AnyLock]:
    lk = backend.lock(now=clock.now, sleep=clock.advance, monotonic=clock.monotonic)
    yield lk
    lk.close()


class TestOneHolder:
    def test_second_acquire_names_the_holder(self, lock: AnyLock, clock: FakeClock) -> None:
        """A held lock refuses another taker, naming user, host, pid, rollout and since when."""
        lease = lock.acquire("acme", CI, ttl_s=600)
        clock.advance(5)
        with pytest.raises(LockHeld) as err:
            lock.acquire("acme", ALICE, ttl_s=600)
        text = str(err.value)
        for part in ("ci@runner-7 pid 202", "rollout r-ci", "since 2026-01-01T00:00:00+00:00"):
            assert part in text
        assert lease.lock_id in text and "--wait-lock" in text
        assert err.value.lease == lease

    def test_fleets_lock_separately(self, lock: AnyLock) -> None:
        """A lock on one fleet does not hold another."""
        lock.acquire("acme", CI, ttl_s=600)
        assert lock.acquire("other", ALICE, ttl_s=600).fleet_id == "other"

    def test_release_frees_the_fleet(self, lock: AnyLock) -> None:
        """After a release the next taker gets the lock."""
        lock.release(lock.acquire("acme", CI, ttl_s=600))
        assert lock.holder("acme") is None
        assert lock.acquire("acme", ALICE, ttl_s=600).holder == ALICE

    def test_bind_names_the_rollout(self, lock: AnyLock) -> None:
        """Binding the lease to a rollout id shows that id to the next taker."""
        lease = lock.bind(lock.acquire("acme", ALICE, ttl_s=600), "r-20260101-abc")
        assert lease.holder.rollout_id == "r-20260101-abc"
        with pytest.raises(LockHeld, match="rollout r-20260101-abc"):
            lock.acquire("acme", CI, ttl_s=600)

    def test_force_release_breaks_a_lock_by_id(self, lock: AnyLock) -> None:
        """An operator can break a lock by its id; its holder then finds it lost."""
        lease = lock.acquire("acme", CI, ttl_s=600)
        assert lock.force_release(lease.lock_id) == lease
        assert lock.force_release(lease.lock_id) is None
        with pytest.raises(LockLost, match="not held by anyone"):
            lock.release(lease)


class TestExpiry:
    def test_expired_lock_is_taken_over(self, lock: AnyLock, clock: FakeClock) -> None:
        """A holder past its expiry (a dead run) is taken over."""
        lock.acquire("acme", CI, ttl_s=60)
        clock.advance(61)
        lease = lock.acquire("acme", ALICE, ttl_s=60)
        assert lock.holder("acme") == lease

    def test_old_holder_learns_it_lost_the_lock(self, lock: AnyLock, clock: FakeClock) -> None:
        """Renewing or releasing a lock taken over raises LockLost naming the new holder."""
        old = lock.acquire("acme", CI, ttl_s=60)
        clock.advance(61)
        lock.acquire("acme", ALICE, ttl_s=60)
        with pytest.raises(LockLost, match="alice@laptop pid 101"):
            lock.renew(old, ttl_s=60)
        with pytest.raises(LockLost):
            lock.release(old)

    def test_renew_pushes_the_expiry(self, lock: AnyLock, clock: FakeClock) -> None:
        """A renewed lock holds past its first expiry."""
        lease = lock.acquire("acme", CI, ttl_s=60)
        clock.advance(50)
        lease = lock.renew(lease, ttl_s=60)
        assert lease.expires == clock.now() + timedelta(seconds=60)
        clock.advance(50)
        with pytest.raises(LockHeld):
            lock.acquire("acme", ALICE, ttl_s=60)

    def test_wait_gets_the_lock_when_the_holder_expires(
        self, lock: AnyLock, clock: FakeClock
    ) -> None:
        """Waiting polls until the holder's lock expires, then takes it."""
        lock.acquire("acme", CI, ttl_s=30)
        lease = lock.wait("acme", ALICE, ttl_s=60, timeout_s=120, poll_s=10)
        assert lease.holder == ALICE
        assert clock.elapsed >= 30

    def test_wait_gives_up_naming_the_holder(self, lock: AnyLock, clock: FakeClock) -> None:
        """Waiting past the timeout raises LockHeld naming the holder."""
        lock.acquire("acme", CI, ttl_s=3600)
        with pytest.raises(LockHeld, match="ci@runner-7"):
            lock.wait("acme", ALICE, ttl_s=60, timeout_s=25, poll_s=10)
        assert clock.elapsed == 25


def _race(location: str, who: int, barrier: object, results: object) -> None:
    """In a child process: wait for the others, try to take the lock once, and keep the
    state open until all have tried (a PostgreSQL lock dies with its holder's session)."""
    state = open_location(location)
    holder = Holder(user=f"user{who}", host="race", pid=mp.current_process().pid or 0)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        lease = state.lock.acquire("acme", holder, ttl_s=600)
        results.put(("won", who, lease.lock_id))  # type: ignore[attr-defined]
    except LockHeld as exc:
        results.put(("held", who, exc.lease.holder.user))  # type: ignore[attr-defined]
    barrier.wait()  # type: ignore[attr-defined]
    state.close()


class TestAcrossProcesses:
    def test_exactly_one_of_racing_processes_wins(self, backend: Backend) -> None:
        """Processes racing for one fleet's lock: exactly one takes it, the others name it."""
        ctx = mp.get_context("spawn")
        n = 4
        barrier = ctx.Barrier(n)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_race, args=(backend.location, i, barrier, results))
            for i in range(n)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in range(n)]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        winners = [o for o in outcomes if o[0] == "won"]
        assert len(winners) == 1
        winner = f"user{winners[0][1]}"
        assert all(o[2] == winner for o in outcomes if o[0] == "held")
        held = backend.state()
        assert held.lock.holder("acme").holder.user == winner  # the row stays after it exits
        held.close()

    def test_live_holder_in_another_process_is_named_by_pid(self, tmp_path: Path) -> None:
        """A lock taken by another process is refused here, naming that process's pid.
        (SQLite only: on PostgreSQL a lock dies with its holder's session, test_pg_shared.py.)"""
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(1)
        results = ctx.Queue()
        child = ctx.Process(target=_race, args=(str(tmp_path), 9, barrier, results))  # SQLite
        child.start()
        assert results.get(timeout=60)[0] == "won"
        child.join(timeout=60)
        here = open_state(tmp_path)
        with pytest.raises(LockHeld, match=f"user9@race pid {child.pid}"):
            here.lock.acquire("acme", ALICE, ttl_s=60)
        here.close()
