"""`reconcile worker`: run box operations for rollouts coordinated through the shared state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import RepoOpt, StateOpt, out
from reconciler.cli.progress import tell


def worker(
    repo: RepoOpt = Path(),
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    rollout: Annotated[
        str | None,
        typer.Option(
            "--rollout",
            help="Serve this rollout only, then exit (how `apply --workers N` starts its own).",
        ),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(
            "--slots",
            min=1,
            max=1024,
            help="Box operations at once (default: the rollout's parallel).",
        ),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            min=0.0,
            help="Exit after SECONDS with no rollout to serve (default: stand by).",
        ),
    ] = None,
) -> None:
    """Run box operations for rollouts coordinated through the shared state (PostgreSQL).

    `reconcile apply --workers N --state postgresql://…` is the coordinator: it advances the
    waves, runs the watchdog and gates and decides rollbacks; workers claim each wave's box
    operations (`SELECT … FOR UPDATE SKIP LOCKED`), apply or restore the box, and record the
    result. A worker renders the repo itself, at the rollout's revision (check it out
    first), so it needs the repo, the SSH key and known_hosts fleet.yaml names, and the age
    identity (docs/team.md). It refuses (exit 1) a coordinator of another reconciler
    version or revision. Standing by (no --rollout) it serves its fleet's rollouts in turn
    until SIGTERM. At its end it prints one JSON line on stdout: boxes run, CPU seconds.

    \b
    Example (on a second machine, in a clone of the fleet repo at the same commit):
      reconcile worker --repo fleet --state postgresql://rc@db.internal/reconciler
    """
    import asyncio
    import json

    from reconciler.app.state import state_url_of
    from reconciler.app.worker import WorkerRequest, run_worker

    url = state_url_of(None, None)
    done = asyncio.run(run_worker(WorkerRequest(repo, url, rollout, slots, idle_exit), tell))
    out.print(json.dumps(done.summary(), sort_keys=True), markup=False, highlight=False,
              soft_wrap=True)  # fmt: skip
    raise typer.Exit(done.exit_code)
