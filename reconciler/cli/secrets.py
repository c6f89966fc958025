"""`reconcile secrets set/list`: age-encrypted values in the repo (reconciler/app/secrets.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, format_option, out, pick_format

secrets_app = typer.Typer(
    help=(
        "Secret values: write one into the repo age-encrypted (set), list names, backends "
        "and keyed fingerprints (list). Values are never printed.\n\n"
        "Example:  reconcile secrets list --repo demo-fleet/fleet"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@secrets_app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="A secret declared in secrets/index.yaml.")],
    value_file: Annotated[
        Path | None,
        typer.Option("--value-file", help="Read the value from this file.", dir_okay=False),
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the value from stdin.")] = False,
    repo: RepoOpt = Path(),
) -> None:
    """Encrypt a new value to the repo's recipients into secrets/NAME.age (not committed).

    The recipients are the age public keys in secrets/recipients.txt. The file is written
    atomically; commit it yourself (the commands are printed). The value is never shown;
    a trailing newline is dropped; an empty value is refused.

    Example:  printf %s "$NEW_KEY" | reconcile secrets set anthropic_api_key --stdin --repo fleet
    """
    from reconciler.app import secrets as use

    value = use.read_value(value_file, sys.stdin if stdin else None)
    done = use.set_secret(repo, name, value)
    for line in use.set_summary(done, repo):
        err.print(line, markup=False)


@secrets_app.command("list")
def list_(
    repo: RepoOpt = Path(),
    fmt_name: Annotated[str, format_option(Format.text, Format.json)] = "text",
) -> None:
    """Each declared secret, its backend (env, file, age, missing) and keyed fingerprint.

    The fingerprint is an HMAC of the value under the fleet key; without the key it is
    "not checked". Values are looked up as apply does: RECONCILER_SECRET_<NAME>, then
    fleet.yaml secrets.files, then secrets/NAME.age. Exit 1 when a backend fails (a wrong
    age identity, a broken file); its reason goes to stderr.

    Example:  reconcile secrets list --repo demo-fleet/fleet --format json
    """
    fmt = pick_format(fmt_name, "secrets list", Format.text, Format.json)
    from reconciler.app import secrets as use

    done = use.list_secrets(repo)
    text = use.list_json(done) if fmt is Format.json else use.list_text(done)
    out.print(text, end="", markup=False)
    for row in done.rows:
        if row.detail is not None:
            err.print(f"{row.name}: {row.detail}", markup=False)
    if not done.keyed:
        err.print("no fleet key: fingerprints not checked", markup=False)
    if done.errors:
        raise typer.Exit(Exit.ERROR)
