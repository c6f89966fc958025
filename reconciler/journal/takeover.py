"""Taking over the fleet lock of a dead holder, at once rather than at its expiry.

An expired lock is taken by `acquire` itself. A lock that has not expired yet is
force-released and taken (the broken lock is named) when its holder is certainly
dead (`LockLease.dead`, the rule of journal/liveness.py): it ran on this machine and
its process is gone, its pid now belongs to a later process, or the machine
rebooted since; or it runs on another machine and its heartbeat is three renewal
periods old.
"""

from __future__ import annotations

from datetime import datetime

from reconciler.journal.base import Holder, Lock, LockHeld, LockLease
from reconciler.journal.db import utc_now
from reconciler.journal.liveness import holder_gone, process_alive

__all__ = ["acquire_or_take_over", "holder_gone", "process_alive"]


def acquire_or_take_over(
    lock: Lock, fleet_id: str, holder: Holder, *, ttl_s: float, now: datetime | None = None
) -> tuple[LockLease, LockLease | None]:
    """Take the fleet lock; a dead holder's lock is broken first. (ours, the broken one).

    `now`: the time heartbeats are judged at (default: the wall clock).

    Raises:
        LockHeld: a live holder has it (or one on another machine whose heartbeat is fresh).
    """
    try:
        return lock.acquire(fleet_id, holder, ttl_s=ttl_s), None
    except LockHeld as exc:
        if exc.lease.dead(now or utc_now()) is None:
            raise
        broken = lock.force_release(exc.lease.lock_id)
        return lock.acquire(fleet_id, holder, ttl_s=ttl_s), broken
