"""Loading the config repo for a command: from the work tree, every error collected."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.errors import Refused
from reconciler.repo import read_work_tree


def label_prefix(repo: Path) -> str:
    """How files of `repo` are named in messages: relative to the current directory."""
    rel = os.path.relpath(repo)
    if rel == ".":
        return ""
    if rel.startswith(".."):
        return f"{repo.resolve().as_posix()}/"
    return f"{Path(rel).as_posix()}/"


def load_config(repo: Path) -> Repo:
    """The repo's work tree, loaded and validated.

    Raises:
        Refused: no fleet.yaml there, or config errors (each one a detail line).
    """
    if not (repo / "fleet.yaml").is_file():
        raise Refused(
            f"{repo}: no fleet.yaml here; pass --repo DIR, the directory of the fleet config repo"
        )
    try:
        return load_repo(read_work_tree(repo), label_prefix(repo))
    except ConfigErrors as exc:
        raise Refused(
            f"{len(exc.errors)} error(s) in {repo}; fix them and run `reconcile validate`",
            tuple(str(e) for e in exc.errors),
        ) from None
