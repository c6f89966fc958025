"""Reading a config repo's files into a `RepoFiles` snapshot: the one place they are read.

Every file of a snapshot, from the work tree (`read_work_tree`) or from a git
revision (reconciler/repo/git.py), goes through `read_repo_file`. Checks on
what may enter a snapshot at all (symlinks, sizes) belong there, so that both
sources get them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from reconciler.config.source import PATTERNS, RepoFiles


class RepoFile(Protocol):
    """One file of a config repo, found but not yet read: in the work tree or a git blob."""

    @property
    def rel(self) -> str:
        """Its posix path relative to the repo root (the key in the snapshot)."""
        ...

    @property
    def where(self) -> str:
        """Where it is, for messages: the path on disk, or `<sha>:<rel>` in git."""
        ...

    def is_symlink(self) -> bool:
        """Whether it is a symbolic link (in git: a blob with the link mode)."""
        ...

    def size(self) -> int:
        """Its size in bytes, known without reading it."""
        ...

    def read(self) -> bytes:
        """Its content (for a symlink: what it points to, as the work tree and git give it)."""
        ...


def read_repo_file(file: RepoFile) -> bytes:
    """The content of one config repo file: the single place every snapshot's file is read.

    Both the work tree and git revisions read each file through this function,
    and nothing else reads a config repo's files. Checks on what may enter a
    snapshot (refusing symlinks, a size limit) go here, before `file.read()`,
    using `file.is_symlink()` and `file.size()`, and name `file.where`. Today it
    reads every file as it is (the YAML loader refuses files over its size limit).
    """
    return file.read()


class _TreeFile:
    """A file of the work tree."""

    __slots__ = ("_path", "rel")

    def __init__(self, root: Path, path: Path) -> None:
        self._path = path
        self.rel = path.relative_to(root).as_posix()

    @property
    def where(self) -> str:
        return str(self._path)

    def is_symlink(self) -> bool:
        return self._path.is_symlink()

    def size(self) -> int:
        return self._path.stat().st_size

    def read(self) -> bytes:
        return self._path.read_bytes()


def read_work_tree(root: Path) -> RepoFiles:
    """Every config file under `root` (the work tree, as it is on disk), keyed by its posix
    path relative to `root`; files that are not part of a config repo are left out."""
    files: dict[str, bytes] = {}
    for pattern in PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                file = _TreeFile(root, path)
                files[file.rel] = read_repo_file(file)
    return RepoFiles(files, origin=f"work tree {root}")
