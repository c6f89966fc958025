"""`reconcile apply`: parse, run the apply use case (reconciler/app/apply.py), show, exit."""

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
    format_option,
    pick_format,
)
from reconciler.cli.progress import ApplyScreen, summary
from reconciler.errors import Interrupted


def apply(
    ctx: typer.Context,
    repo: RepoOpt = Path(),
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact plan; touch nothing.")
    ] = False,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Apply this saved plan (refused if stale).")
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Apply the uncommitted work tree.")
    ] = False,
    allow_unreachable: Annotated[
        bool, typer.Option("--allow-unreachable", help="Leave unreachable boxes out.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Retry a revision that was rolled back.")
    ] = False,
    wait_lock: Annotated[
        float | None,
        typer.Option(
            "--wait-lock",
            help="Wait up to SECONDS for the fleet lock, then up to SECONDS for boxes another "
            "run holds (a live lease on the box, e.g. a laptop's run beside CI).",
        ),
    ] = None,
    soak: Annotated[
        float | None, typer.Option("--soak", help="Override the policy's soak seconds.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            max=64,
            help="Run the box operations in N worker processes, coordinated through the shared "
            "state (--state postgresql://…); workers on other machines (`reconcile worker`) "
            "join in. 0: in this process.",
        ),
    ] = 0,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    fmt: Annotated[str, format_option(Format.text, Format.json)] = "text",
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of an internal error.")
    ] = False,
) -> None:
    """Roll the repo's HEAD out to the fleet in waves, with watchdog and auto-rollback.

    Renders from the HEAD commit (a dirty tree is refused unless --allow-dirty),
    reaches every box first, shows the plan and asks (--yes skips the question).
    A rollout cut short before (a crash, a signal) is settled first, then apply goes
    on to the head. SIGTERM/SIGINT put back what the rollout changed, then exit 3.
    Exit codes: 0 done, 1 error before anything changed, 3 rolled back cleanly,
    4 a rollback failed on some box (named loudly).
    Progress: a live display on a terminal; one line per phase change and per gate
    verdict when piped; --format json: the plan, then one event a line, on stdout.

    \b
    Examples:
      reconcile apply --repo demo-fleet/fleet --dry-run
      reconcile apply --repo demo-fleet/fleet --yes
      reconcile apply --repo demo-fleet/fleet --yes --format json | jq -c .event
      reconcile apply --repo fleet --yes --workers 4 --state postgresql://rc@db/reconciler
    """
    import asyncio

    from reconciler.app.apply import ApplyRequest
    from reconciler.app.apply import apply as run_apply

    form = pick_format(fmt, "apply", Format.text, Format.json)
    state = cli_state(ctx)
    state.debug = debug
    req = ApplyRequest(
        repo=repo, state_dir=state_dir, dry_run=dry_run, allow_dirty=allow_dirty,
        allow_unreachable=allow_unreachable, force=force, plan_file=plan_file, soak_s=soak,
        wait_lock_s=wait_lock, boundary_hook=state.boundary_hook, workers=workers,
    )  # fmt: skip
    screen = ApplyScreen(form, dry_run=dry_run, yes=yes)
    try:
        result = asyncio.run(run_apply(req, screen, state.trace))
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted before the rollout began; nothing of it was written"
        ) from None
    finally:
        screen.close()
    if result.run is not None:
        summary(result.run)
    raise typer.Exit(result.exit_code)
