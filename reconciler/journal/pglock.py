"""The shared fleet lock: a row in PostgreSQL plus a session-level advisory lock.

`acquire` opens a dedicated session for the lease and takes
`pg_try_advisory_lock(key)` (key: from the fleet id) in it; the session stays open
while the lease lives. The `locks` row names the holder (user, host, pid, rollout,
since, expiry, heartbeat) and the backend pid of that session. So:

- Of two takers on any machines, exactly one gets the advisory lock; the other is
  told who holds it (the row).
- A holder whose session drops (its process killed, its machine gone, its network
  cut long enough for the server to notice: TCP keepalives, ~25 s) loses the advisory
  lock at once: the
  next taker gets it and takes over the row, whatever its expiry. A dropped
  session is a lost lock: `renew`, `bind` and `release` run in the lease's own
  session and check the row is still ours, so the old holder gets LockLost.
- An expired lease, or one an operator force-releases, is broken by terminating
  its session (`pg_terminate_backend`; the role needs the right to signal it: the
  same role, or `pg_signal_backend`), which frees the advisory lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from reconciler.journal.base import Holder, JournalError, LockHeld, LockLease, LockLost
from reconciler.journal.db import Now, utc_now
from reconciler.journal.pgdb import connect, session

Row = tuple[object, ...]
TAKEOVER_WAIT_S: Final = 5.0  # how long a terminated holder's session may take to go
# A lease's session: the server probes an idle client every 10 s and drops one that has
# vanished (no FIN: a machine gone, a cable cut) after ~25 s, which frees the advisory lock;
# a renewal never hangs the run longer than 15 s.
_LEASE_SESSION: Final = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET statement_timeout = '15s'",
)
_COLUMNS = (
    "lock_id, fleet_id, user_name, host, pid, rollout_id, since, expires,"
    " machine_id, boot_id, start_time, heartbeat"
)


def advisory_key(fleet_id: str) -> int:
    """The advisory lock key of a fleet: 64 bits of sha256("reconciler-lock:" + fleet id)."""
    digest = hashlib.sha256(f"reconciler-lock:{fleet_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _time(value: object) -> datetime:
    assert isinstance(value, float | int)  # noqa: S101 - DOUBLE PRECISION NOT NULL
    return datetime.fromtimestamp(float(value), UTC)


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _lease(row: Row) -> LockLease:
    lock_id, fleet_id, user, host, pid, rollout_id, since, expires, mid, boot, start, beat = row
    return LockLease(
        lock_id=str(lock_id),
        fleet_id=str(fleet_id),
        holder=Holder(
            user=str(user),
            host=str(host),
            pid=int(str(pid)),
            rollout_id=_opt(rollout_id),
            machine_id=_opt(mid),
            boot_id=_opt(boot),
            start_time=int(str(start)) if start is not None else None,
        ),
        since=_time(since),
        expires=_time(expires),
        heartbeat=_time(beat) if beat is not None else None,
    )


def _lost(lease: LockLease, why: str) -> LockLost:
    return LockLost(
        f"lock {lease.lock_id} on fleet {lease.fleet_id} is no longer ours ({why}); "
        "it expired, was force-released or its database session dropped: stop and check "
        "the fleet's state"
    )


class PostgresLock:
    """The `Lock` over a PostgreSQL database.

    Args:
        url: `postgresql://user@host:port/db`; each lease opens its own session to it.
        now: the wall clock expiries are measured by.
        sleep: how `wait` waits between tries (tests pass one that advances a fake clock).
        monotonic: how `wait` measures its timeout.
        conn: an open session for reads and force-releases (shared with the journal).
    """

    def __init__(
        self,
        url: str,
        *,
        now: Now = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        conn: psycopg.Connection[Row] | None = None,
    ) -> None:
        self._url = url
        self._conn = conn if conn is not None else connect(url)
        self._now = now
        self._sleep = sleep
        self._monotonic = monotonic
        self._sessions: dict[str, psycopg.Connection[Row]] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        """Close the reading session and every lease's session (their locks are then lost)."""
        with self._guard:
            for conn in self._sessions.values():
                conn.close()
            self._sessions.clear()
        self._conn.close()

    def session_pid(self, lease: LockLease) -> int | None:
        """The database backend pid holding `lease`'s advisory lock (None: not held here)."""
        conn = self._sessions.get(lease.lock_id)
        return None if conn is None else conn.info.backend_pid

    def _row(self, where: str, arg: str) -> tuple[LockLease, int] | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS}, backend_pid FROM locks WHERE {where} = %s",  # noqa: S608
            (arg,),
        ).fetchone()
        return None if row is None else (_lease(row[:-1]), int(str(row[-1])))

    def holder(self, fleet_id: str) -> LockLease | None:
        """The fleet's lock as held now (maybe expired, or its session dropped), or None."""
        found = self._row("fleet_id", fleet_id)
        return None if found is None else found[0]

    def _try(self, conn: psycopg.Connection[Row], key: int, wait_s: float) -> bool:
        """Take the advisory lock in `conn`, trying for up to `wait_s` real seconds."""
        deadline = time.monotonic() + wait_s
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is not None and row[0] is True:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _terminate(self, backend_pid: int) -> None:
        self._conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))

    def acquire(self, fleet_id: str, holder: Holder, *, ttl_s: float) -> LockLease:
        """Take the fleet's lock for `ttl_s` seconds.

        Raises:
            LockHeld: another holder's session is alive and its lease has not expired.
        """
        if ttl_s <= 0:
            raise ValueError(f"a lock's ttl must be positive, got {ttl_s}")
        key = advisory_key(fleet_id)
        conn = session(self._url)
        try:
            for setting in _LEASE_SESSION:
                conn.execute(setting)
            self._take(conn, fleet_id, key)
            now = self._now()
            lease = LockLease(
                lock_id=uuid.uuid4().hex,
                fleet_id=fleet_id,
                holder=holder,
                since=now,
                expires=now + timedelta(seconds=ttl_s),
                heartbeat=now,
            )
            conn.execute(
                f"INSERT INTO locks ({_COLUMNS}, backend_pid)"  # noqa: S608
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, pg_backend_pid())"
                " ON CONFLICT (fleet_id) DO UPDATE SET lock_id = excluded.lock_id,"
                " user_name = excluded.user_name, host = excluded.host, pid = excluded.pid,"
                " rollout_id = excluded.rollout_id, since = excluded.since,"
                " expires = excluded.expires, machine_id = excluded.machine_id,"
                " boot_id = excluded.boot_id, start_time = excluded.start_time,"
                " heartbeat = excluded.heartbeat, backend_pid = excluded.backend_pid",
                (lease.lock_id, fleet_id, holder.user, holder.host, holder.pid,
                 holder.rollout_id, now.timestamp(), lease.expires.timestamp(),
                 holder.machine_id, holder.boot_id, holder.start_time, now.timestamp()),
            )  # fmt: skip
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(
                f"the shared state failed taking fleet {fleet_id}'s lock: {exc}"
            ) from None
        except BaseException:
            conn.close()
            raise
        with self._guard:
            self._sessions[lease.lock_id] = conn
        return lease

    def _take(self, conn: psycopg.Connection[Row], fleet_id: str, key: int) -> None:
        """The fleet's advisory lock in `conn`; an expired holder's session is broken first.

        Raises:
            LockHeld: a live session holds it and its lease has not expired.
        """
        if self._try(conn, key, 0.0):
            return
        found = self._row("fleet_id", fleet_id)
        if found is None:  # a taker between its advisory lock and its row: give it a moment
            time.sleep(0.1)
            found = self._row("fleet_id", fleet_id)
        if found is None:
            raise LockHeld(self._unnamed(fleet_id))
        if not found[0].expired(self._now()):
            raise LockHeld(found[0])
        self._terminate(found[1])  # expired: break its session
        if not self._try(conn, key, TAKEOVER_WAIT_S):
            again = self._row("fleet_id", fleet_id)
            raise LockHeld(again[0] if again else self._unnamed(fleet_id))

    def _unnamed(self, fleet_id: str) -> LockLease:
        """A lease for a holder whose session holds the lock but wrote no row yet."""
        now = self._now()
        return LockLease(
            lock_id="(being taken)",
            fleet_id=fleet_id,
            holder=Holder(user="?", host="?", pid=0),
            since=now,
            expires=now,
        )

    def wait(
        self,
        fleet_id: str,
        holder: Holder,
        *,
        ttl_s: float,
        timeout_s: float,
        poll_s: float = 1.0,
    ) -> LockLease:
        """Take the lock, waiting up to `timeout_s` for the holder to let go (or expire).

        Raises:
            LockHeld: still held by another when the time is up; it is named.
        """
        deadline = self._monotonic() + timeout_s
        while True:
            try:
                return self.acquire(fleet_id, holder, ttl_s=ttl_s)
            except LockHeld:
                left = deadline - self._monotonic()
                if left <= 0:
                    raise
                self._sleep(min(poll_s, left))

    def _own(self, lease: LockLease, sets: str, args: tuple[object, ...]) -> None:
        """Update our row in the lease's own session: LockLost when the session dropped or
        the row is no longer ours."""
        conn = self._sessions.get(lease.lock_id)
        if conn is None:
            raise _lost(lease, f"this process holds no session for it; {self._now_held(lease)}")
        try:
            cur = conn.execute(
                f"UPDATE locks SET {sets} WHERE lock_id = %s AND fleet_id = %s"  # noqa: S608
                " AND backend_pid = pg_backend_pid()",
                (*args, lease.lock_id, lease.fleet_id),
            )
            if cur.rowcount == 1:
                return
        except psycopg.Error:
            self._drop(lease)
            raise _lost(lease, f"its database session dropped; {self._now_held(lease)}") from None
        self._drop(lease)
        raise _lost(lease, self._now_held(lease))

    def _now_held(self, lease: LockLease) -> str:
        now = self.holder(lease.fleet_id)
        return f"now held by {now.describe()}" if now else "not held by anyone"

    def _drop(self, lease: LockLease) -> None:
        with self._guard:
            conn = self._sessions.pop(lease.lock_id, None)
        if conn is not None:
            conn.close()

    def renew(self, lease: LockLease, *, ttl_s: float) -> LockLease:
        """Beat: the heartbeat becomes now, the expiry now + `ttl_s`.

        Raises:
            LockLost: the session dropped, or the lock is no longer ours.
        """
        now = self._now()
        expires = now + timedelta(seconds=ttl_s)
        self._own(lease, "expires = %s, heartbeat = %s", (expires.timestamp(), now.timestamp()))
        return replace(lease, expires=expires, heartbeat=now)

    def bind(self, lease: LockLease, rollout_id: str) -> LockLease:
        """Name the rollout the lock is held for (once `begin_rollout` gave its id)."""
        self._own(lease, "rollout_id = %s", (rollout_id,))
        return replace(lease, holder=lease.holder.bound(rollout_id))

    def release(self, lease: LockLease) -> None:
        """Let go of our lock: delete the row and close its session (freeing the advisory lock).

        Raises:
            LockLost: the lock is no longer ours.
        """
        self._own(lease, "lock_id = lock_id", ())
        conn = self._sessions[lease.lock_id]
        try:
            conn.execute(
                "DELETE FROM locks WHERE lock_id = %s AND backend_pid = pg_backend_pid()",
                (lease.lock_id,),
            )
        except psycopg.Error:
            raise _lost(lease, "its database session dropped") from None
        finally:
            self._drop(lease)

    def force_release(self, lock_id: str) -> LockLease | None:
        """Break a lock by id (an operator's decision): delete its row and terminate its
        session; the lease broken, or None."""
        with self._conn.transaction():
            found = self._row("lock_id", lock_id)
            self._conn.execute("DELETE FROM locks WHERE lock_id = %s", (lock_id,))
        if found is None:
            return None
        held, backend_pid = found
        with self._guard:
            mine = self._sessions.pop(lock_id, None)
        if mine is not None:
            mine.close()
        else:
            self._terminate(backend_pid)
        return held
