"""`reconcile unlock`: break the fleet lock of a dead run (reconciler/app/unlock.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import RepoOpt, StateDirOpt, StateOpt, fail
from reconciler.cli.progress import tell


def unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock id a refused apply named.")],
    repo: RepoOpt = Path(),
    force: Annotated[bool, typer.Option("--force", help="Required: break the lock.")] = False,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
) -> None:
    """Break a fleet lock whose holder is dead (needs --force and the lock id).

    The lock id is printed by the `apply` that was refused, with its holder. The lock is
    looked up where apply keeps it: --state-dir, else fleet.yaml's state_dir, else
    ~/.local/state/reconciler.

    Example:  reconcile unlock --force 6b1f0c2e9d4a4f7e8a3c5d2b1e0f9a87 --repo demo-fleet/fleet
    """
    if not force:
        fail("unlock breaks another run's lock: pass --force with the lock id")
    from reconciler.app.unlock import UnlockRequest
    from reconciler.app.unlock import unlock as run_unlock

    done = run_unlock(UnlockRequest(repo, lock_id, state_dir))
    tell(f"released lock {done.lock_id}: was held by {done.was.describe()}")
