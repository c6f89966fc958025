"""Unlock: break the fleet lock of a dead run, in the state dir apply itself would use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.app.state import open_state, state_selected
from reconciler.engine.session import Request, read_source
from reconciler.errors import StateError
from reconciler.journal.base import LockLease


@dataclass(frozen=True, slots=True)
class UnlockRequest:
    """The lock to break (its id, as a refused apply named it) and where apply keeps it."""

    repo: Path
    lock_id: str
    state_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class UnlockResult:
    """The lock that was broken."""

    lock_id: str
    was: LockLease


def unlock(req: UnlockRequest) -> UnlockResult:
    """Force-release the lock: --state-dir, else fleet.yaml's state_dir (read exactly as apply
    reads it), else ~/.local/state/reconciler.

    Raises:
        StateError: no such lock there.
        InputError: the repo cannot be read (without --state-dir, its state_dir is needed).
    """
    fleet = None
    if req.state_dir is None and not state_selected():
        fleet = read_source(Request(repo=req.repo, allow_dirty=True)).repo.fleet
    with open_state(fleet, req.state_dir) as state:
        broken = state.lock.force_release(req.lock_id)
    if broken is None:
        raise StateError(f"no lock {req.lock_id}; nothing released")
    return UnlockResult(req.lock_id, broken)
