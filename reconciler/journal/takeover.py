"""Taking over the fleet lock of a dead holder: its process is gone from this host.

An expired lock is taken by `acquire` itself. A lock that has not expired yet
but whose holder was on this machine and whose process no longer exists
(a killed apply) is force-released and taken, and the broken lock is named.
A holder on another machine is never judged dead here: only its expiry counts.
"""

from __future__ import annotations

import os
import socket

from reconciler.journal.base import Holder, Lock, LockHeld, LockLease


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_dead(holder: Holder) -> bool:
    """The holder was on this host and its process is gone."""
    return holder.host == socket.gethostname() and not process_alive(holder.pid)


def acquire_or_take_over(
    lock: Lock, fleet_id: str, holder: Holder, *, ttl_s: float
) -> tuple[LockLease, LockLease | None]:
    """Take the fleet lock; a dead local holder's lock is broken first. (ours, the broken one).

    Raises:
        LockHeld: a live holder (or one on another machine, not expired) has it.
    """
    try:
        return lock.acquire(fleet_id, holder, ttl_s=ttl_s), None
    except LockHeld as exc:
        if not holder_dead(exc.lease.holder):
            raise
        broken = lock.force_release(exc.lease.lock_id)
        return lock.acquire(fleet_id, holder, ttl_s=ttl_s), broken
