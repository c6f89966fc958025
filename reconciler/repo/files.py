"""Reading a config repo's files into a `RepoFiles` snapshot: the one place they are read.

Every file of a snapshot, from the work tree (`read_work_tree`) or from a git
revision (reconciler/repo/git.py), goes through `read_repo_file`, which refuses
what would make a pull request reach beyond the repo: a symlink (`repo.symlink`:
named, never followed, its target never read) and anything that is not a regular
file (`repo.not-regular`: a FIFO would hang the reader, a device read forever).
A `Snapshot` caps the files a repo may have and their total bytes (`repo.too-large`),
checked from sizes known before a byte is read.

The work tree is walked without following links: the root is opened once, each
config directory under it with O_NOFOLLOW relative to the root, and each file with
O_NOFOLLOW relative to its directory, so a path swapped for a link between the scan
and the read is refused too, not followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final, Protocol

from reconciler.config.errors import ConfigError, ConfigErrors, SourceSpan
from reconciler.config.source import PATTERNS, RepoFiles, wanted

# Caps on a whole snapshot (config files only). A 10,000-agent fleet is a few MB in a
# few dozen files; these leave room for far more and stop a repo built to exhaust CI.
MAX_REPO_FILES: Final = 5_000
MAX_REPO_BYTES: Final = 20 * 1024 * 1024
# The directories a config repo's files live in (the first part of PATTERNS).
CONFIG_DIRS: Final = tuple(sorted({p.split("/", 1)[0] for p in PATTERNS if "/" in p}))
_TOP_FILES: Final = tuple(p for p in PATTERNS if "/" not in p)
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)


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

    def is_regular(self) -> bool:
        """Whether it is a regular file (not a FIFO, device, socket, directory or link)."""
        ...

    def size(self) -> int:
        """Its size in bytes, known without reading it."""
        ...

    def read(self) -> bytes:
        """Its content; never follows a link (raises ConfigError if it finds one)."""
        ...


def refusal(where: str, rule: str, message: str) -> ConfigError:
    """An error of the repo edge, at the file it names."""
    return ConfigError(SourceSpan(where, 1, 1), rule, message)


def _symlink(where: str) -> ConfigError:
    return refusal(
        where,
        "repo.symlink",
        f"{where} is a symbolic link; a config repo holds its files themselves"
        " (links are refused and never followed): replace it with the file",
    )


def _not_regular(where: str) -> ConfigError:
    return refusal(
        where,
        "repo.not-regular",
        f"{where} is not a regular file (a directory, FIFO, socket or device);"
        " remove it or replace it with a regular file",
    )


def read_repo_file(file: RepoFile) -> bytes:
    """The content of one config repo file: the single place every snapshot's file is read.

    Both the work tree and git revisions read each file through this function,
    and nothing else reads a config repo's files. A symlink or a file that is not
    regular is refused (ConfigError naming `file.where`) before anything is read.
    """
    if file.is_symlink():
        raise _symlink(file.where)
    if not file.is_regular():
        raise _not_regular(file.where)
    if file.size() > MAX_REPO_BYTES:
        raise _too_many_bytes(file.where, file.size())
    return file.read()


def _too_many_bytes(where: str, total: int) -> ConfigError:
    return refusal(
        where,
        "repo.too-large",
        f"the config files reach {total:,} bytes here, over the cap of {MAX_REPO_BYTES:,}"
        " bytes for a whole repo (MAX_REPO_BYTES); a fleet's config is far smaller",
    )


class Snapshot:
    """Collects a snapshot's files and the refusals, within the caps on count and bytes."""

    __slots__ = ("bytes", "errors", "files", "over")

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.errors: list[ConfigError] = []
        self.bytes = 0
        self.over = False

    def refuse(self, error: ConfigError) -> None:
        self.errors.append(error)

    def add(self, file: RepoFile) -> None:
        """Read `file` through `read_repo_file` unless it breaks a rule or a cap."""
        if self.over:
            return
        if len(self.files) >= MAX_REPO_FILES:
            self.over = True
            self.errors.append(
                refusal(
                    file.where,
                    "repo.too-large",
                    f"the repo has more than {MAX_REPO_FILES:,} files, the cap"
                    " (MAX_REPO_FILES); split the fleet, or remove files that are not config",
                )
            )
            return
        try:
            if not file.is_symlink() and file.is_regular():
                self.bytes += file.size()
                if self.bytes > MAX_REPO_BYTES:
                    self.over = True
                    raise _too_many_bytes(file.where, self.bytes)
            self.files[file.rel] = read_repo_file(file)
        except ConfigError as exc:
            self.errors.append(exc)

    def done(self, origin: str, sha: str | None = None, root: str | None = None) -> RepoFiles:
        """The snapshot; ConfigErrors with every refusal when there is any."""
        if self.errors:
            raise ConfigErrors(self.errors)
        return RepoFiles(self.files, origin=origin, sha=sha, root=root)


class _TreeFile:
    """A file of the work tree, found by a scan that did not follow links."""

    __slots__ = ("_dir_fd", "_mode", "_name", "_size", "rel", "where")

    def __init__(self, dir_fd: int, name: str, rel: str, where: str, st: os.stat_result) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._mode = st.st_mode
        self._size = st.st_size
        self.rel = rel
        self.where = where

    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self._mode)

    def is_regular(self) -> bool:
        return stat.S_ISREG(self._mode)

    def size(self) -> int:
        return self._size

    def read(self) -> bytes:
        flags = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC
        try:
            fd = os.open(self._name, flags, dir_fd=self._dir_fd)
        except OSError as exc:
            if Path(self.where).is_symlink():
                raise _symlink(self.where) from None
            raise refusal(self.where, "repo.not-regular", f"{self.where}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(self.where)
            # Never more than the cap, whatever the file grew to since it was sized.
            data = f.read(MAX_REPO_BYTES + 1)
        if len(data) > MAX_REPO_BYTES:
            raise _too_many_bytes(self.where, len(data))
        return data


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def read_work_tree(root: Path) -> RepoFiles:
    """Every config file under `root` (the work tree, as it is on disk), keyed by its posix
    path relative to `root`; files that are not part of a config repo are left out.

    Raises:
        ConfigErrors: a config file or directory is a symlink or not a regular file, or
            the repo passes a cap (repo.symlink, repo.not-regular, repo.too-large).
    """
    snap = Snapshot()
    root_fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    opened = [root_fd]
    try:
        for name in _TOP_FILES:
            st = _lstat(name, root_fd)
            if st is not None:
                snap.add(_TreeFile(root_fd, name, name, str(root / name), st))
        for dirname in CONFIG_DIRS:
            st = _lstat(dirname, root_fd)
            where = str(root / dirname)
            if st is None or not (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            if stat.S_ISLNK(st.st_mode):
                snap.refuse(_symlink(where))
                continue
            try:
                dir_fd = os.open(dirname, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC,
                                 dir_fd=root_fd)  # fmt: skip
            except OSError:
                link = Path(where).is_symlink()
                snap.refuse(_symlink(where) if link else _not_regular(where))
                continue
            opened.append(dir_fd)
            for entry in sorted(os.listdir(dir_fd)):  # noqa: PTH208 (by fd: no link followed)
                rel = f"{dirname}/{entry}"
                if not wanted(rel):
                    continue
                st = _lstat(entry, dir_fd)
                if st is not None:
                    snap.add(_TreeFile(dir_fd, entry, rel, f"{where}/{entry}", st))
        return snap.done(origin=f"work tree {root}", root=str(root.resolve()))
    finally:
        for fd in opened:
            os.close(fd)
