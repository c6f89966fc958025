"""Reading the config repo from git: the files of a revision, in memory, work tree untouched."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.config.source import RepoFiles, wanted
from reconciler.errors import InputError
from reconciler.repo.files import CONFIG_DIRS, Snapshot, read_work_tree, refusal


class GitError(InputError):
    """A git operation failed: not a repository, an unknown revision, ..."""


@dataclass(frozen=True, slots=True)
class Revision:
    """A resolved revision: its sha and its config files."""

    sha: str
    files: RepoFiles


class _BlobFile:
    """A file of a git revision: a blob of the commit's tree."""

    __slots__ = ("_blob", "_sha", "rel")

    def __init__(self, sha: str, blob: git.Blob) -> None:
        self._blob = blob
        self._sha = sha
        self.rel = str(blob.path)

    @property
    def where(self) -> str:
        return f"{self._sha}:{self.rel}"

    def is_symlink(self) -> bool:
        return bool(self._blob.mode == git.Blob.link_mode)

    def is_regular(self) -> bool:
        return bool(self._blob.mode in (git.Blob.file_mode, git.Blob.executable_mode))

    def size(self) -> int:
        return int(self._blob.size)

    def read(self) -> bytes:
        data: bytes = self._blob.data_stream.read()
        return data


def _repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not a git repository (its root)") from None


def read_revision(path: Path, rev: str) -> Revision:
    """The config files of `rev` (any git revision syntax), read from git objects."""
    return _read(path, rev, wanted)


def _secret_file(rel: str) -> bool:
    return rel == "secrets/recipients.txt" or (
        rel.startswith("secrets/") and rel.endswith(".age") and rel.count("/") == 1
    )


def read_secret_files(path: Path, rev: str) -> Revision:
    """The encrypted secret files of `rev` (secrets/NAME.age, secrets/recipients.txt):
    ciphertext and public keys, read from git objects like the config files."""
    return _read(path, rev, _secret_file)


def _read(path: Path, rev: str, wanted: Callable[[str], bool]) -> Revision:
    repo = _repo(path)
    try:
        commit = repo.commit(rev)
    except (git.BadName, ValueError, git.GitCommandError):
        raise GitError(f"{path}: unknown revision {rev!r}") from None
    sha = commit.hexsha
    snap = Snapshot()
    for item in commit.tree.traverse():
        if not isinstance(item, git.Blob):
            continue
        rel = str(item.path)
        if wanted(rel):
            snap.add(_BlobFile(sha, item))  # read_repo_file refuses links and odd modes
        elif rel in CONFIG_DIRS and item.mode == git.Blob.link_mode:
            # A config directory committed as a link: a checkout would follow it.
            snap.refuse(
                refusal(
                    f"{sha}:{rel}",
                    "repo.symlink",
                    f"{sha}:{rel} is a symbolic link; a config repo holds its directories"
                    " themselves (links are refused and never followed)",
                )
            )
    files = snap.done(origin=f"{rev} ({sha[:12]}) of {path}", sha=sha, root=str(path.resolve()))
    return Revision(sha, files)


@dataclass(frozen=True, slots=True)
class WorkTree:
    """HEAD's sha, whether the config files in the work tree differ from it, and the files
    `revision` names (HEAD's when clean, the work tree's as read for `dirty_hash` when dirty)."""

    head: str
    dirty: bool
    dirty_hash: str | None
    files: RepoFiles

    @property
    def revision(self) -> str:
        """What stamps record: the sha, or sha+dirty-<hash> when applied from a dirty tree."""
        return f"{self.head}+dirty-{self.dirty_hash}" if self.dirty else self.head


def work_tree(path: Path) -> WorkTree:
    """Compare the work tree's config files with HEAD's."""
    head = read_revision(path, "HEAD")
    current = read_work_tree(path)
    if current == head.files:
        return WorkTree(head.sha, dirty=False, dirty_hash=None, files=head.files)
    h = hashlib.sha256()
    for name in sorted(current):
        h.update(name.encode() + b"\0" + hashlib.sha256(current[name]).digest())
    return WorkTree(head.sha, dirty=True, dirty_hash=h.hexdigest()[:12], files=current)


# How far back a move is looked for: a box still at a path from further back than this many
# commits has not been applied to for that long (and `git log -G` reads every commit's diff).
PATH_HISTORY_COMMITS = 200


def path_change_revisions(path: Path, limit: int = 3) -> list[str]:
    """Where agents' files may have been before a move: HEAD, and the last `limit` commits
    (of the last PATH_HISTORY_COMMITS) whose config files change a `config_path` or
    `secrets_path` line, with the parent of each (the revision before the move). Empty when
    `path` is not a git repo or has no HEAD. Asked once per HEAD (cached).
    """
    try:
        head = _repo(path).head.commit.hexsha
    except (GitError, git.GitCommandError, ValueError):
        return []
    return list(_path_changes(str(path.resolve()), head, limit))


@functools.lru_cache(maxsize=8)
def _path_changes(path: str, head: str, limit: int) -> tuple[str, ...]:
    repo = _repo(Path(path))
    try:
        recent = repo.git.rev_list(f"-n{PATH_HISTORY_COMMITS + 1}", head).split()
        span = f"{recent[-1]}..{head}" if len(recent) > PATH_HISTORY_COMMITS else head
        out = repo.git.log(
            f"-n{limit}", "--format=%H %P", "-G", "(config_path|secrets_path)", span,
            "--", "agents", "shards",
        )  # fmt: skip
    except git.GitCommandError:
        return (head,)
    found = [head]
    for line in out.splitlines():
        found += line.split()[:2]  # the commit and its first parent
    return tuple(dict.fromkeys(found))


def commit_time(path: Path, rev: str) -> float | None:
    """When `rev` was committed (unix seconds), or None when it is not a commit of the repo."""
    try:
        return float(_repo(path).commit(rev.split("+", 1)[0]).committed_date)
    except (GitError, git.BadName, ValueError, git.GitCommandError):
        return None
