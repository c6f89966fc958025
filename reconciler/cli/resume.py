"""`reconcile resume`: finish or roll back a rollout a crash cut short (see docs/resume.md).

Exit 0 nothing to resume, or nothing had changed; 3 rolled back cleanly; 4 some
box could not be put back (named, with what to do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import (
    Format,
    RepoOpt,
    StateDirOpt,
    StateOpt,
    cli_state,
    fail,
    format_option,
    pick_format,
)
from reconciler.cli.progress import reporter_for, settled, tell


def resume(
    ctx: typer.Context,
    repo: RepoOpt = Path(),
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="settle, finish or rollback (default: fleet.yaml rollout.on_resume, settle). "
            "A rollout a failed gate or watchdog had judged is always rolled back.",
        ),
    ] = None,
    break_leases: Annotated[
        bool,
        typer.Option("--break-leases", help="The rollout's lease holders are dead: break them."),
    ] = False,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    fmt: Annotated[str, format_option(Format.text, Format.json)] = "text",
) -> None:
    """Settle or roll back a rollout cut short by a crash or a signal (the boxes decide).

    Finds the unfinished rollout in the journal, or, with the journal lost, from the
    boxes' stamps and leases; `apply` runs the same step before it plans, then goes on
    to the head. settle: the cut-short wave is put back, passed waves are re-verified
    and kept; finish: every box consistent on the target is kept; rollback: every box
    is put back. Exit codes: 0 nothing to resume, settled or finished; 3 rolled back
    cleanly; 4 a box could not be put back.

    Example:  reconcile resume --repo demo-fleet/fleet --policy rollback
    """
    import asyncio

    from reconciler.app.resume import POLICIES, ResumeRequest
    from reconciler.app.resume import resume as run_resume

    form = pick_format(fmt, "resume", Format.text, Format.json)
    if policy is not None and policy not in POLICIES:
        fail(f"--policy {policy}: expected settle, finish or rollback")
    state = cli_state(ctx)
    req = ResumeRequest(repo, state_dir, policy, break_leases, boundary_hook=state.boundary_hook)
    state.trace.state_dir = state_dir
    screen = reporter_for(form)
    try:
        done = asyncio.run(run_resume(req, screen, tell))
    finally:
        screen.close()
    settled(done.result)
    raise typer.Exit(done.exit_code)
