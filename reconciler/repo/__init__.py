"""The edge that reads a fleet config repo: from the work tree or from a git revision.

Everything here does I/O; it hands the pure core (reconciler/config/) an
immutable `RepoFiles` snapshot (posix path -> bytes, plus where it came from),
and the core never opens a path itself. Every file is read by one function,
`read_repo_file`.

The git names are loaded on first use (PEP 562): reading the work tree
(`reconcile validate`) does not import gitpython.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciler.config.source import RepoFiles
from reconciler.repo.files import RepoFile, read_repo_file, read_work_tree

if TYPE_CHECKING:
    from reconciler.repo.git import (
        GitError,
        Revision,
        WorkTree,
        commit_time,
        path_change_revisions,
        read_revision,
        read_secret_files,
        work_tree,
    )

_GIT_NAMES = frozenset(
    {
        "GitError",
        "Revision",
        "WorkTree",
        "commit_time",
        "path_change_revisions",
        "read_revision",
        "read_secret_files",
        "work_tree",
    }
)


def __getattr__(name: str) -> Any:
    """A name of reconciler.repo.git, imported (with gitpython) on first use."""
    if name not in _GIT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("reconciler.repo.git"), name)


__all__ = [
    "GitError",
    "RepoFile",
    "RepoFiles",
    "Revision",
    "WorkTree",
    "commit_time",
    "path_change_revisions",
    "read_repo_file",
    "read_revision",
    "read_secret_files",
    "read_work_tree",
    "work_tree",
]
