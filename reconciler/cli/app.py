"""The `reconcile` command: a thin typer app; each command lives in its own module.

A command loads only what it uses: the command modules import their use case (and with
it the engine, SSH, HTTP, git, age and journal libraries) inside the command function,
so `reconcile --help` needs typer alone and `reconcile validate` only the config
loader's libraries (tests/test_imports.py holds both to that).

Commands parse, call a use case of reconciler/app/, render, and exit. Exceptions
become exit codes in one place: the root group's `invoke` hands them to cli/exits.py,
so the console script and in-process runs (CliRunner) end the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from reconciler import __version__
from reconciler.app.trace import BoundaryHook
from reconciler.cli.agents import agents
from reconciler.cli.apply import apply
from reconciler.cli.common import CliState, cli_state
from reconciler.cli.demo import demo_app
from reconciler.cli.diff import diff
from reconciler.cli.explain import explain
from reconciler.cli.history import history
from reconciler.cli.render import render
from reconciler.cli.resume import resume
from reconciler.cli.rotate import rotate_secret
from reconciler.cli.secrets import secrets_app
from reconciler.cli.status import status
from reconciler.cli.unlock import unlock
from reconciler.cli.validate import validate
from reconciler.errors import ReconcilerError


class ReconcileGroup(TyperGroup):
    """The root command group: every command's errors end here, as an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from reconciler.cli.redacting import redacted_output

        with redacted_output():
            return self._invoke(ctx)

    def _invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # --help, usage errors and exits: typer's own
        except ReconcilerError as exc:
            from reconciler.cli import exits

            raise typer.Exit(exits.reconciler_error(exc)) from None
        except Exception as exc:  # a bug: its traceback is kept, one line is shown
            from reconciler.cli import exits

            label = ctx.invoked_subcommand or "reconcile"
            raise typer.Exit(exits.internal_error(exc, cli_state(ctx), label)) from None


app = typer.Typer(
    name="reconcile",
    cls=ReconcileGroup,
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
app.add_typer(secrets_app, name="secrets")
app.command()(diff)
app.command()(status)
app.command(name="rotate-secret")(rotate_secret)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """GitOps for fleets of AI-agent boxes."""
    cli_state(ctx)


def main(argv: Sequence[str] | None = None, *, boundary_hook: BoundaryHook | None = None) -> None:
    """The console script. `boundary_hook` is called at every rollout and resume step
    boundary (reconciler.testing.crashing injects the crash tests' hook; the product passes
    none)."""
    app(args=list(argv) if argv is not None else None, prog_name="reconcile",
        obj=CliState(boundary_hook=boundary_hook))  # fmt: skip
