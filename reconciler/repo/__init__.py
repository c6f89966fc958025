"""The edge that reads a fleet config repo: from the work tree or from a git revision.

Everything here does I/O; it hands the pure core (reconciler/config/) an
immutable `RepoFiles` snapshot (posix path -> bytes, plus where it came from),
and the core never opens a path itself. Every file is read by one function,
`read_repo_file`.
"""

from reconciler.config.source import RepoFiles
from reconciler.repo.files import RepoFile, read_repo_file, read_work_tree
from reconciler.repo.git import (
    GitError,
    Revision,
    WorkTree,
    commit_time,
    read_revision,
    work_tree,
)

__all__ = [
    "GitError",
    "RepoFile",
    "RepoFiles",
    "Revision",
    "WorkTree",
    "commit_time",
    "read_repo_file",
    "read_revision",
    "read_work_tree",
    "work_tree",
]
