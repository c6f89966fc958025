"""The embedded fleet lock: one row per fleet in the SQLite state file, taken under BEGIN IMMEDIATE.

Checking for a live holder and taking the lock happen in one write
transaction, so of two processes racing for it exactly one wins, and the
other is told who won (user, host, pid, rollout, since when). A lock carries
an expiry and a heartbeat (its last renewal) and its holder's identity (machine id,
boot id, pid, process start time): a holder that died is taken over once its lock
expired, and at once by `journal/takeover.py` when it was on this machine and its
process is gone (or its pid reused), or its heartbeat is three periods old.
Releasing a lock that is no longer ours raises LockLost, so a run that overslept
its expiry finds out.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.journal.base import Holder, LockHeld, LockLease, LockLost
from reconciler.journal.db import Now, connect, transaction, utc_now

_COLUMNS = (
    "lock_id, fleet_id, user, host, pid, rollout_id, since, expires,"
    " machine_id, boot_id, start_time, heartbeat"
)
LockRow = tuple[
    str,
    str,
    str,
    str,
    int,
    str | None,
    float,
    float,
    str | None,
    str | None,
    int | None,
    float | None,
]


def _lease(row: LockRow) -> LockLease:
    lock_id, fleet_id, user, host, pid, rollout_id, since, expires, mid, boot, start, beat = row
    return LockLease(
        lock_id=lock_id,
        fleet_id=fleet_id,
        holder=Holder(
            user=user,
            host=host,
            pid=pid,
            rollout_id=rollout_id,
            machine_id=mid,
            boot_id=boot,
            start_time=start,
        ),
        since=datetime.fromtimestamp(since, UTC),
        expires=datetime.fromtimestamp(expires, UTC),
        heartbeat=datetime.fromtimestamp(beat, UTC) if beat is not None else None,
    )


class SqliteLock:
    """The `Lock` over the SQLite state file.

    Args:
        state_dir: where the state file lives (default `~/.local/state/reconciler`).
        now: the wall clock expiries are measured by.
        sleep: how `wait` waits between tries (tests pass one that advances a fake clock).
        monotonic: how `wait` measures its timeout.
        conn: an open connection to share with a `SqliteJournal` (instead of `state_dir`).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        now: Now = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self._conn = conn or connect(state_dir)
        self._now = now
        self._sleep = sleep
        self._monotonic = monotonic

    def close(self) -> None:
        self._conn.close()

    def _row(self, where: str, arg: str) -> LockLease | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM locks WHERE {where} = ?",  # noqa: S608
            (arg,),
        ).fetchone()
        return None if row is None else _lease(row)

    def holder(self, fleet_id: str) -> LockLease | None:
        """The fleet's lock as held now (maybe expired), or None."""
        return self._row("fleet_id", fleet_id)

    def acquire(self, fleet_id: str, holder: Holder, *, ttl_s: float) -> LockLease:
        """Take the fleet's lock for `ttl_s` seconds.

        Raises:
            LockHeld: another holder's lock has not expired; it is named.
        """
        if ttl_s <= 0:
            raise ValueError(f"a lock's ttl must be positive, got {ttl_s}")
        with transaction(self._conn):
            now = self._now()
            held = self.holder(fleet_id)
            if held is not None and not held.expired(now):
                raise LockHeld(held)
            lease = LockLease(
                lock_id=uuid.uuid4().hex,
                fleet_id=fleet_id,
                holder=holder,
                since=now,
                expires=now + timedelta(seconds=ttl_s),
                heartbeat=now,
            )
            self._conn.execute(
                f"INSERT OR REPLACE INTO locks ({_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lease.lock_id,
                    fleet_id,
                    holder.user,
                    holder.host,
                    holder.pid,
                    holder.rollout_id,
                    lease.since.timestamp(),
                    lease.expires.timestamp(),
                    holder.machine_id,
                    holder.boot_id,
                    holder.start_time,
                    now.timestamp(),
                ),
            )
        return lease

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

    def _update(self, lease: LockLease, sets: str, args: tuple[object, ...]) -> None:
        cur = self._conn.execute(
            f"UPDATE locks SET {sets} WHERE lock_id = ? AND fleet_id = ?",  # noqa: S608
            (*args, lease.lock_id, lease.fleet_id),
        )
        if cur.rowcount != 1:
            now = self.holder(lease.fleet_id)
            who = f"now held by {now.describe()}" if now else "not held by anyone"
            raise LockLost(
                f"lock {lease.lock_id} on fleet {lease.fleet_id} is no longer ours ({who}); "
                "it expired or was force-released: stop and check the fleet's state"
            )

    def renew(self, lease: LockLease, *, ttl_s: float) -> LockLease:
        """Beat: the heartbeat becomes now, the expiry now + `ttl_s`.

        Raises:
            LockLost: the lock is no longer ours.
        """
        now = self._now()
        expires = now + timedelta(seconds=ttl_s)
        self._update(lease, "expires = ?, heartbeat = ?", (expires.timestamp(), now.timestamp()))
        return replace(lease, expires=expires, heartbeat=now)

    def bind(self, lease: LockLease, rollout_id: str) -> LockLease:
        """Name the rollout the lock is held for (once `begin_rollout` gave its id)."""
        self._update(lease, "rollout_id = ?", (rollout_id,))
        return replace(lease, holder=lease.holder.bound(rollout_id))

    def release(self, lease: LockLease) -> None:
        """Let go of our lock.

        Raises:
            LockLost: the lock is no longer ours (taken over after expiry, or force-released).
        """
        cur = self._conn.execute(
            "DELETE FROM locks WHERE lock_id = ? AND fleet_id = ?", (lease.lock_id, lease.fleet_id)
        )
        if cur.rowcount != 1:
            self._update(lease, "lock_id = lock_id", ())  # raises LockLost, naming the holder

    def force_release(self, lock_id: str) -> LockLease | None:
        """Break a lock by id (an operator's decision); the lease broken, or None."""
        with transaction(self._conn):
            held = self._row("lock_id", lock_id)
            self._conn.execute("DELETE FROM locks WHERE lock_id = ?", (lock_id,))
        return held
