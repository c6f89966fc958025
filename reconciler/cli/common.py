"""What every command shares: the consoles, --repo and --format, the command's context object."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from reconciler.app.config import label_prefix, load_config
from reconciler.app.state import BoundaryHook, Trace
from reconciler.config.repo import Repo
from reconciler.errors import ExitCode, Refused

# Data goes to stdout (so `| jq` works); progress and errors go to stderr.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

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


class Format(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


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
    return load_config(repo)


__all__ = [
    "CliState",
    "Exit",
    "Format",
    "RepoOpt",
    "StateDirOpt",
    "cli_state",
    "err",
    "fail",
    "label_prefix",
    "load_or_exit",
    "out",
]
