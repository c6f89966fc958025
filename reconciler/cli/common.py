"""What every command shares: the --repo option, loading the repo, errors, exit codes."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.repo import read_work_tree

# Data goes to stdout (so `| jq` works); progress and errors go to stderr.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class Exit(enum.IntEnum):
    """The exit codes every command keeps (design.md, CLI conventions)."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    ROLLED_BACK = 3
    ROLLBACK_FAILED = 4


RepoOpt = Annotated[
    Path,
    typer.Option(
        "--repo",
        help="The fleet config repo (a directory holding fleet.yaml).",
        file_okay=False,
        show_default="current directory",
    ),
]


class Format(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def label_prefix(repo: Path) -> str:
    """How files of `repo` are named in messages: relative to the current directory."""
    rel = os.path.relpath(repo)
    if rel == ".":
        return ""
    if rel.startswith(".."):
        return f"{repo.resolve().as_posix()}/"
    return f"{Path(rel).as_posix()}/"


def fail(message: str, code: Exit = Exit.ERROR) -> NoReturn:
    """One error line on stderr (the message printed verbatim, never as markup), then exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(int(code))


def load_or_exit(repo: Path) -> Repo:
    """The loaded repo, or every config error on stderr and exit 1."""
    if not (repo / "fleet.yaml").is_file():
        fail(f"{repo}: no fleet.yaml here; pass --repo DIR, the directory of the fleet config repo")
    try:
        return load_repo(read_work_tree(repo), label_prefix(repo))
    except ConfigErrors as exc:
        for e in exc.errors:
            err.print(str(e), markup=False)
        fail(f"{len(exc.errors)} error(s) in {repo}; fix them and run `reconcile validate`")
