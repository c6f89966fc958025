"""`reconcile rotate-secret`: parse, run the rotation use case (reconciler/app/rotate.py), exit."""

from __future__ import annotations

import json
import sys
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
from reconciler.cli.progress import ApplyScreen, tell
from reconciler.errors import InputError, Interrupted


class NoValue(InputError):
    """No usable new value was given."""


def _new_value(value_file: Path | None, stdin: bool, from_backend: bool) -> str | None:
    given = [x for x in (value_file is not None, stdin, from_backend) if x]
    if len(given) != 1:
        raise NoValue("give exactly one of --value-file FILE, --stdin or --from-backend")
    if value_file is not None:
        try:
            text = value_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NoValue(f"cannot read the new value from {value_file}: {exc}") from None
        return text.rstrip("\n")
    if stdin:
        return sys.stdin.read().rstrip("\n")
    return None


def rotate_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name (secrets/index.yaml).")],
    repo: RepoOpt = Path(),
    value_file: Annotated[
        Path | None, typer.Option("--value-file", help="Read the new value from FILE.")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the new value from stdin.")] = False,
    from_backend: Annotated[
        bool,
        typer.Option("--from-backend", help="The new value is already in the backend."),
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show where each box stands; change nothing.")
    ] = False,
    until: Annotated[
        str, typer.Option("--until", help="Stop after this phase: stage, promote or retire.")
    ] = "retire",
    yes: Annotated[bool, typer.Option("--yes", help="Go on without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the stage plan; touch nothing.")
    ] = False,
    soak: Annotated[
        float | None, typer.Option("--soak", help="Override the policy's soak seconds.")
    ] = None,
    wave_size: Annotated[int, typer.Option("--wave-size", help="Agents per wave.", min=1)] = 10,
    auth_max: Annotated[
        float,
        typer.Option("--auth-max", help="Abort when more than this share of tasks fail on auth."),
    ] = 0.02,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    fmt: Annotated[str, format_option(Format.text, Format.json)] = "text",
) -> None:
    """Rotate one secret with zero downtime: stage the new value, promote it, retire the old.

    stage: every box that uses NAME gets the new value as `next` beside `current`, in
    waves of about 10 agents, behind the watchdog, the fleet's gates and an auth-error
    gate (default abort at 2% of tasks failing on auth); a bad value rolls back with
    `current` working everywhere (exit 3, incident). promote: the new value becomes
    `current`. retire: no old value stays on any box; the backend must hold the new value
    (`reconcile secrets set NAME` for an age file). Running it again picks up where it
    stopped. Revoking the old key at its provider is yours to do.
    Exit codes: 0 done (or retire pending: see the message), 1 refused, 3 rolled back.

    \b
    Examples:
      reconcile rotate-secret anthropic_api_key --repo demo-fleet/fleet --value-file new.key
      reconcile rotate-secret anthropic_api_key --repo demo-fleet/fleet --from-backend --yes
      reconcile rotate-secret anthropic_api_key --repo demo-fleet/fleet --status
    """
    import asyncio

    from reconciler.app.rotate import PHASES, RotateRequest, rotate, rotation_status

    form = pick_format(fmt, "rotate-secret", Format.text, Format.json)
    state = cli_state(ctx)
    if status:
        rows = asyncio.run(rotation_status(repo, name))
        if form is Format.json:
            doc = [
                {"agent": r.agent, "where": r.where,
                 "rotation": r.mark.model_dump(mode="json") if r.mark else None}
                for r in rows
            ]  # fmt: skip
            typer.echo(json.dumps({"secret": name, "boxes": doc}, indent=2))
        else:
            for r in rows:
                mark = f"  ({r.mark.rotation_id}: {r.mark.phase})" if r.mark else ""
                typer.echo(f"{r.agent:32} {r.where}{mark}")
        raise typer.Exit(0)
    if until not in PHASES:
        raise NoValue(f"--until must be one of {', '.join(PHASES)}, got {until!r}")
    value = _new_value(value_file, stdin, from_backend)
    req = RotateRequest(
        repo=repo, name=name, value=value, until=until,
        state_dir=state_dir, dry_run=dry_run, soak_s=soak, wave_size=wave_size,
        auth_max=auth_max,
    )  # fmt: skip
    screen = ApplyScreen(form, dry_run=dry_run, yes=yes)
    try:
        result = asyncio.run(rotate(req, screen, state.trace))
    except KeyboardInterrupt:
        raise Interrupted("interrupted; run the same command again to go on") from None
    finally:
        screen.close()
    if result.done:
        tell(f"rotation of {name}: {', '.join(result.done)} done")
    raise typer.Exit(result.exit_code)
