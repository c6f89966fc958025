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
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from reconciler import __version__
from reconciler.app.trace import BoundaryHook
from reconciler.cli.common import CliState, cli_state
from reconciler.cli.lazy import LazyCommand, LazyCommands
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from typer._click import HelpFormatter


def _cmd(name: str, module: str, summary: str, attr: str | None = None) -> LazyCommand:
    return LazyCommand(name, f"reconciler.cli.{module}", attr or name.replace("-", "_"), summary)


# Every command, in the order --help lists them; each module is imported when its command
# runs. The summary is the first paragraph of the command's help (tests/test_imports.py).
# A new command goes here; one registered with app.command() still works, but its module
# is then imported at every start-up.
COMMANDS: tuple[LazyCommand, ...] = (
    _cmd("validate", "validate",
         "Check the config repo: YAML safety, shapes, the payload schema, cross-file rules."),
    _cmd("render", "render",
         "Print the rendered config payload of AGENT, byte for byte as the box gets it."),
    _cmd("explain", "explain",
         "Show FIELD's value for AGENT and the file:line chain that set and overrode it."),
    _cmd("agents", "agents", "List agents with their tier, shard and box."),
    _cmd("apply", "apply",
         "Roll the repo's HEAD out to the fleet in waves, with watchdog and auto-rollback."),
    _cmd("unlock", "unlock",
         "Break a fleet lock whose holder is dead (needs --force and the lock id)."),
    _cmd("resume", "resume",
         "Settle or roll back a rollout cut short by a crash or a signal (the boxes decide)."),
    _cmd("worker", "worker",
         "Run box operations for rollouts coordinated through the shared state (PostgreSQL)."),
    _cmd("history", "history",
         "Past rollouts: revision, outcome, duration, waves, time to detect and to roll back."),
    _cmd("diff", "diff",
         "Show what a change does to the fleet: agents, fields, cost flags; secrets never shown."),
    _cmd("status", "status",
         "Show each agent green, yellow or red, with the reasons, grouped by shard and tier."),
    _cmd("capacity", "capacity",
         "Per tier: λ, peak arrivals, service time, concurrency, and the agents needed."),
    _cmd("rotate-secret", "rotate",
         "Rotate one secret with zero downtime: stage the new value, promote it, retire the old."),
    _cmd("pr", "pr",
         "Pull-request helpers for CI: post the fleet diff as one sticky comment, updated in "
         "place (comment).", "pr_app"),
    _cmd("review", "review",
         "Check that a pull request has the approvals its cost-impacting or [access] changes "
         "need."),
    _cmd("drift-issue", "drift", "Open, update or close the drift issue from the drift check's "
         "exit code."),
    _cmd("demo", "demo",
         "A local fleet of simulated agent boxes on loopback (real SSH, real HTTP) to try every "
         "command against.", "demo_app"),
    _cmd("secrets", "secrets",
         "Secret values: write one into the repo age-encrypted (set), list names, backends and "
         "keyed fingerprints (list). Values are never printed.", "secrets_app"),
    _cmd("alerts", "alerts",
         "Alert rules as code: compile alerts/*.yaml to Prometheus rule files and "
         "alertmanager.yml (render), check them and run their promtool unit tests (test).",
         "alerts_app"),
)  # fmt: skip


class ReconcileGroup(TyperGroup):
    """The root command group: every command's errors end here, as an exit code.

    Its commands are `COMMANDS`, each built when it is looked up (to run, or for its own
    --help); the root --help lists their summaries without building any.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lazy = LazyCommands(COMMANDS)
        for name, command in self.commands.items():  # any registered with app.command()
            lazy[name] = command
        self.lazy = self.commands = lazy

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(self.commands)

    def format_commands(self, ctx: typer.Context, formatter: HelpFormatter) -> None:  # type: ignore[override]
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section("Commands"):
            formatter.write_dl([(n, self.lazy.short_help(n, limit)) for n in names])

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
