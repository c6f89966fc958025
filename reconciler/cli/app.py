"""The `reconcile` command: a thin typer app; each command lives in its own module."""

from __future__ import annotations

import typer

from reconciler import __version__
from reconciler.cli.agents import agents
from reconciler.cli.apply import apply, unlock
from reconciler.cli.common import Exit, err
from reconciler.cli.demo import demo_app
from reconciler.cli.diff import diff
from reconciler.cli.explain import explain
from reconciler.cli.history import history
from reconciler.cli.render import render
from reconciler.cli.resume import resume
from reconciler.cli.status import status
from reconciler.cli.validate import validate
from reconciler.journal.base import JournalError
from reconciler.transport.base import TransportError

app = typer.Typer(
    name="reconcile",
    help=(
        "GitOps for fleets of AI-agent boxes: validate the config repo, diff it against the "
        "live boxes, and roll it out in waves.\n\n"
        "Example:  reconcile validate --repo fleet-config-example"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command()(validate)
app.command()(render)
app.command()(explain)
app.command()(agents)
app.command()(apply)
app.command()(unlock)
app.command()(resume)
app.command()(history)
app.add_typer(demo_app, name="demo")
app.command()(diff)
app.command()(status)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """GitOps for fleets of AI-agent boxes."""


def main() -> None:
    """The console script: the app, with the errors that can reach the top made one clean line."""
    try:
        app()
    except (JournalError, TransportError) as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise SystemExit(int(Exit.ERROR)) from None
