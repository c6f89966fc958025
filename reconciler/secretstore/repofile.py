"""Reading and writing the repo's secrets/ files that are not config: NAME.age, recipients.txt.

The same refusals as the config loader (reconciler/repo/files.py): every file is read
through `read_repo_file`, so a symlink (`repo.symlink`) or anything not a regular file
(`repo.not-regular`) is refused, named and never followed. The secrets/ directory is
opened with O_NOFOLLOW relative to the repo root and each file with O_NOFOLLOW relative
to it, so a path swapped for a link between the look and the read is refused too.

These files are read from the work tree (what `reconcile secrets set` wrote, committed or
not), like the other backends' values, never from a git revision.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final

from reconciler.config.errors import ConfigError
from reconciler.repo import read_repo_file
from reconciler.repo.files import refusal

SECRETS_DIR: Final = "secrets"
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS: Final = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC


def _linked_dir(where: str) -> ConfigError:
    return refusal(
        where,
        "repo.symlink",
        f"{where} is a symbolic link; a config repo holds its directories themselves"
        " (links are refused and never followed): replace it with the directory",
    )


class _SecretsFile:
    """One file of the repo's secrets/ directory, found without following links."""

    __slots__ = ("_dir_fd", "_mode", "_name", "_size", "rel", "where")

    def __init__(self, dir_fd: int, name: str, where: str, st: os.stat_result) -> None:
        self._dir_fd = dir_fd
        self._name = name
        self._mode = st.st_mode
        self._size = st.st_size
        self.rel = f"{SECRETS_DIR}/{name}"
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
            rule = "repo.symlink" if Path(self.where).is_symlink() else "repo.not-regular"
            raise refusal(self.where, rule, f"{self.where}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise refusal(self.where, "repo.not-regular", f"{self.where} is not a file")
            return f.read()


@contextmanager
def _secrets_dir(root: Path, *, create: bool = False) -> Iterator[int | None]:
    """An fd of root/secrets opened without following links; None when there is none."""
    where = str(root / SECRETS_DIR)
    root_fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        try:
            st = os.stat(SECRETS_DIR, dir_fd=root_fd, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                yield None
                return
            os.mkdir(SECRETS_DIR, 0o755, dir_fd=root_fd)
            st = os.stat(SECRETS_DIR, dir_fd=root_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise _linked_dir(where)
        if not stat.S_ISDIR(st.st_mode):
            raise refusal(where, "repo.not-regular", f"{where} is not a directory")
        try:
            dir_fd = os.open(SECRETS_DIR, _DIR_FLAGS, dir_fd=root_fd)
        except OSError:
            raise _linked_dir(where) from None
        try:
            yield dir_fd
        finally:
            os.close(dir_fd)
    finally:
        os.close(root_fd)


def secrets_path(root: Path, name: str) -> Path:
    """Where secrets/`name` is (for messages)."""
    return root / SECRETS_DIR / name


def read_secrets_file(root: Path, name: str) -> bytes | None:
    """The bytes of root/secrets/`name`, or None when it does not exist.

    Raises:
        ConfigError: it (or secrets/) is a symlink or not a regular file (repo.symlink,
            repo.not-regular), naming the path.
    """
    with _secrets_dir(root) as dir_fd:
        if dir_fd is None:
            return None
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return read_repo_file(_SecretsFile(dir_fd, name, str(secrets_path(root, name)), st))


def exists(root: Path, name: str) -> bool:
    """Whether root/secrets/`name` is there (as anything: a link counts, to be refused)."""
    try:
        secrets_path(root, name).lstat()
    except OSError:
        return False
    return True


def write_secrets_file(root: Path, name: str, data: bytes) -> Path:
    """Write root/secrets/`name` atomically (mode 0644: only ciphertext goes here).

    A temporary file beside it, flushed, then renamed over it: a reader sees the old
    file or the new one, never half of one. secrets/ is created when missing and
    refused when it is a link.
    """
    with _secrets_dir(root, create=True) as dir_fd:
        assert dir_fd is not None  # noqa: S101 (create=True always opens one)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)
    return secrets_path(root, name)
