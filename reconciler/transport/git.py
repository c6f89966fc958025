"""Reading the config repo from git: the files of a revision, in memory, work tree untouched."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.config.source import read_dir, wanted
from reconciler.errors import InputError


class GitError(InputError):
    """A git operation failed: not a repository, an unknown revision, ..."""


@dataclass(frozen=True, slots=True)
class Revision:
    """A resolved revision: its sha and its config files."""

    sha: str
    files: dict[str, bytes]


def _repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not a git repository (its root)") from None


def read_revision(path: Path, rev: str) -> Revision:
    """The config files of `rev` (any git revision syntax), read from git objects."""
    repo = _repo(path)
    try:
        commit = repo.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise GitError(f"{path}: unknown revision {rev!r}") from None
    files: dict[str, bytes] = {}
    for item in commit.tree.traverse():
        if isinstance(item, git.Blob) and wanted(str(item.path)):
            files[str(item.path)] = item.data_stream.read()
    return Revision(commit.hexsha, files)


@dataclass(frozen=True, slots=True)
class WorkTree:
    """HEAD's sha and whether the config files in the work tree differ from it."""

    head: str
    dirty: bool
    dirty_hash: str | None

    @property
    def revision(self) -> str:
        """What stamps record: the sha, or sha+dirty-<hash> when applied from a dirty tree."""
        return f"{self.head}+dirty-{self.dirty_hash}" if self.dirty else self.head


def work_tree(path: Path) -> WorkTree:
    """Compare the work tree's config files with HEAD's."""
    head = read_revision(path, "HEAD")
    current = read_dir(path)
    if current == head.files:
        return WorkTree(head.sha, dirty=False, dirty_hash=None)
    h = hashlib.sha256()
    for name in sorted(current):
        h.update(name.encode() + b"\0" + hashlib.sha256(current[name]).digest())
    return WorkTree(head.sha, dirty=True, dirty_hash=h.hexdigest()[:12])


def commit_time(path: Path, rev: str) -> float | None:
    """When `rev` was committed (unix seconds), or None when it is not a commit of the repo."""
    try:
        return float(_repo(path).commit(rev.split("+", 1)[0]).committed_date)
    except (GitError, git.BadName, ValueError, git.GitCommandError):
        return None
