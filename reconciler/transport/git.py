"""Moved: reading the config repo from git lives in the repo edge (reconciler/repo/git.py).

This module only re-exports it for importers not yet updated; import from
`reconciler.repo` instead.
"""

from reconciler.repo.git import (
    GitError,
    Revision,
    WorkTree,
    commit_time,
    read_revision,
    work_tree,
)

__all__ = ["GitError", "Revision", "WorkTree", "commit_time", "read_revision", "work_tree"]
