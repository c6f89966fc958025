"""The shared backend across machines: a fresh runner sees a running rollout and its lock
before it touches a box, resumes from the journal, and a killed holder's dropped session
frees the lock (a dropped session is a lost lock).

A "machine" here is a process (or a state object) that knows nothing but the URL.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import psycopg
import pytest
from plan.builders import fleet_changes, plan_of
from rollout.sim import Script, run

from reconciler.journal import Holder, JournalError, LockHeld, LockLost, open_state
from reconciler.journal.pglock import PostgresLock
from reconciler.journal.postgres import PostgresJournal
from reconciler.rollout import Rollout, fold
from reconciler.testing.postgres import PASSWORD, PgServer

from .conftest import empty

FLEET = "acme-support"
N_EVENTS = 12


@pytest.fixture
def url(pg_module_url: str) -> str:
    empty(pg_module_url)
    return pg_module_url


def _laptop(url: str, ready: object, events: int) -> None:
    """In a child process ("the laptop"): take the lock, begin a rollout, journal some of its
    events, then hang (until killed) holding the lock."""
    state = open_state(url=url)
    holder = Holder(user="alice", host="laptop", pid=os.getpid())
    lease = state.lock.acquire(FLEET, holder, ttl_s=3600)
    plan = plan_of(fleet_changes(6))
    done = run(plan, Script())
    rid = state.journal.begin_rollout(plan, {}, holder)
    state.lock.bind(lease, rid)
    for ev in done.events[:events]:
        state.journal.record_event(rid, ev)
    ready.put(rid)  # type: ignore[attr-defined]
    signal.pause()


def test_a_fresh_runner_sees_the_rollout_and_lock_then_resumes_once_the_holder_dies(
    url: str,
) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    laptop = ctx.Process(target=_laptop, args=(url, ready, N_EVENTS))
    laptop.start()
    try:
        rid = ready.get(timeout=120)
        ci = open_state(url=url)  # a fresh CI runner: nothing but the URL
        try:
            held = ci.lock.holder(FLEET)
            assert held is not None
            assert (held.holder.user, held.holder.host, held.holder.rollout_id) == (
                "alice",
                "laptop",
                rid,
            )
            assert [r.rollout_id for r in ci.journal.unfinished(FLEET)] == [rid]
            me = Holder(user="ci", host="runner-7", pid=os.getpid())
            with pytest.raises(LockHeld, match=f"alice@laptop pid {laptop.pid}, rollout {rid}"):
                ci.lock.acquire(FLEET, me, ttl_s=600)

            os.kill(laptop.pid or 0, signal.SIGKILL)  # the laptop dies: its session drops
            laptop.join(timeout=30)
            lease = ci.lock.wait(FLEET, me, ttl_s=600, timeout_s=30, poll_s=0.2)
            assert lease.holder == me  # long before the laptop's hour-long lease expired

            record = ci.journal.rollout(rid)  # resume: from the journal, not only the stamps
            events = ci.journal.replay(rid)
            assert len(events) == N_EVENTS
            plan = record.plan
            journaled = run(plan, Script()).events[:N_EVENTS]
            expected = fold(Rollout.start(plan, record.pre_shas), journaled)
            assert fold(Rollout.start(plan, record.pre_shas), events) == expected
            ci.lock.release(lease)
        finally:
            ci.close()
    finally:
        if laptop.is_alive():
            laptop.kill()
        laptop.join(timeout=30)


def test_a_terminated_session_is_a_lost_lock(url: str, pg_server: PgServer) -> None:
    """The server ends the holder's session (as a crash or a cut network would): renew raises
    LockLost, and another taker gets the lock at once."""
    lock = PostgresLock(url)
    other = PostgresLock(url)
    try:
        lease = lock.acquire(FLEET, Holder(user="alice", host="laptop", pid=1), ttl_s=3600)
        lease = lock.renew(lease, ttl_s=3600)
        backend_pid = lock.session_pid(lease)
        assert backend_pid is not None
        assert pg_server.terminate(backend_pid)
        with pytest.raises(LockLost, match="session dropped"):
            lock.renew(lease, ttl_s=3600)
        taken = other.wait(FLEET, Holder(user="ci", host="r", pid=2), ttl_s=60, timeout_s=10)
        assert other.holder(FLEET) == taken
        with pytest.raises(LockLost, match="now held by ci@r pid 2"):
            lock.release(lease)
    finally:
        lock.close()
        other.close()


def test_a_database_of_a_newer_reconciler_is_refused_by_name(pg_server: PgServer) -> None:
    """Tables made by a newer schema: refused, naming the database without its password."""
    url = pg_server.create_database()
    PostgresJournal(url).close()  # made, at this version
    PostgresJournal(url).close()  # opened again: only read
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO reconciler_schema (version) VALUES (99)")
    with pytest.raises(JournalError, match="journal schema 99 is newer") as err:
        PostgresJournal(url)
    assert PASSWORD not in str(err.value) and ":***@" in str(err.value)
