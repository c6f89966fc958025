"""What every command shares: the consoles, --repo and --format, the command's context object."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from reconciler.app.trace import BoundaryHook, Trace
from reconciler.errors import ExitCode, Refused

if TYPE_CHECKING:
    from rich.console import Console

    from reconciler.config.repo import Repo


class _LazyConsole:
    """A rich Console made on first use: `reconcile --help` never loads rich."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        """The Console itself (for rich objects that hold one, such as Live)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


_ERR, _OUT = _LazyConsole(stderr=True), _LazyConsole(stderr=False)

# Data goes to stdout (so `| jq` works); progress and errors go to stderr.
if TYPE_CHECKING:
    err: Console
    out: Console
else:
    err, out = _ERR, _OUT


def err_console() -> Console:
    """The stderr Console itself (`err` forwards attributes only: no `with`, no dunders)."""
    return _ERR.get()


Exit = ExitCode  # the exit codes every command keeps (reconciler/errors.py)

RepoOpt = Annotated[
    Path,
    typer.Option(
        "--repo",
        help="The fleet config repo (a directory holding fleet.yaml).",
        file_okay=False,
        show_default="current directory",
    ),
]
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="Journal and lock directory.")
]


def _select_state(value: str | None) -> str | None:
    from reconciler.app.state import select_state

    select_state(value)
    return value


StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help=(
            "A team's shared journal and lock: postgresql://USER@HOST:PORT/DATABASE, without a"
            " password (PGPASSWORD, RECONCILER_STATE_PASSWORD or a passfile; docs/team.md)."
            " Overrides --state-dir and fleet.yaml. Example:"
            " --state postgresql://reconciler@db.internal:5432/reconciler"
        ),
        callback=_select_state,
        show_default="SQLite in the state directory",
    ),
]


class Format(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    github = "github"  # GitHub workflow commands (annotations): validate only


def format_option(*accepted: Format) -> Any:
    """The --format option of a command that prints `accepted` formats (the first is the
    default); any other value is refused by `pick_format` with exit 1."""
    names = ", ".join(f.value for f in accepted)
    return typer.Option(
        "--format",
        metavar="[" + "|".join(f.value for f in accepted) + "]",
        help=f"One of: {names} (anything else is refused, exit 1).",
    )


def pick_format(value: str, command: str, *accepted: Format) -> Format:
    """The Format `value` names, if `command` prints it; else Refused (exit 1)."""
    for f in accepted:
        if value == f.value:
            return f
    values = [f.value for f in accepted]
    names = " or ".join(values) if len(values) < 3 else f"{', '.join(values[:-1])} or {values[-1]}"
    raise Refused(f"{command} --format {value}: {command} prints {names} only")


@dataclass
class CliState:
    """The typer context object: what main() injects, and what an internal error needs."""

    boundary_hook: BoundaryHook | None = None  # the crash tests' hook (reconciler.testing)
    trace: Trace = field(default_factory=Trace)
    debug: bool | None = None  # None: the command has no --debug


def cli_state(ctx: typer.Context) -> CliState:
    """The command's context object (a fresh one when the app runs without main())."""
    state = ctx.find_object(CliState)
    if state is None:
        state = ctx.ensure_object(CliState)
    return state


def fail(message: str) -> NoReturn:
    """Refuse with one error line (printed, with the exit code, by cli/exits.py)."""
    raise Refused(message)


def load_or_exit(repo: Path) -> Repo:
    """The loaded repo; Refused with every config error otherwise (exit 1)."""
    from reconciler.app.config import load_config

    return load_config(repo)


__all__ = [
    "CliState",
    "Exit",
    "Format",
    "RepoOpt",
    "StateDirOpt",
    "StateOpt",
    "cli_state",
    "err",
    "err_console",
    "fail",
    "format_option",
    "load_or_exit",
    "out",
    "pick_format",
]
