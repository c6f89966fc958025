"""SFTP for a demo box, chrooted to the box's root directory.

Absolute paths resolve inside the root exactly as on a real box
(`/etc/agent/config.yaml` is `ROOT/etc/agent/config.yaml`). Anything that
would leave the root is refused with "permission denied": a `..` climbing
above `/`, a symlink (or a symlinked directory) pointing outside, a NUL byte.
File operations are asyncssh's own, so fsync@openssh.com, posix-rename@openssh.com
and an atomic `mkdir` behave as against OpenSSH. The box's faults (disk full,
connection dropped mid-transfer) and counters hook into `open` and `write`.
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import TYPE_CHECKING, Any, cast

import asyncssh

from reconciler.demo.faults import FaultKind

if TYPE_CHECKING:
    from reconciler.demo.box import DemoBox

_WRITE_FLAGS = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC


class ChrootSFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server, confined to one box's root, with the box's faults."""

    def __init__(self, chan: Any, box: DemoBox) -> None:
        super().__init__(chan, chroot=os.fsencode(box.root))
        self._box = box
        box.counters.sftp_sessions += 1
        self._root = os.fsencode(os.path.realpath(box.root))
        self._config_files: set[int] = set()  # open handles on the config or its history

    def _inside(self, local: bytes) -> bool:
        return local == self._root or local.startswith(self._root + b"/")

    def map_path(self, path: bytes) -> bytes:
        """The local path of a box path; permission denied for any way out of the root."""
        if b"\0" in path:
            raise asyncssh.SFTPPermissionDenied("NUL byte in path")
        depth = 0
        for part in posixpath.join(b"/", path).split(b"/"):
            if part == b"..":
                depth -= 1
                if depth < 0:
                    raise asyncssh.SFTPPermissionDenied("path leaves the box's root")
            elif part not in (b"", b"."):
                depth += 1
        local: bytes = super().map_path(path)
        parent = os.path.realpath(posixpath.dirname(local))
        if not self._inside(parent) or not self._inside(os.path.realpath(local)):
            raise asyncssh.SFTPPermissionDenied("path leaves the box's root (symlink)")
        return local

    def _is_config(self, path: bytes) -> bool:
        """A write to the config file (its temp name) or to its history directory."""
        paths = self._box.paths
        p = posixpath.normpath(posixpath.join(b"/", path)).decode(errors="replace")
        head, name = posixpath.split(p)
        config = str(paths.config)
        in_config_dir = head == posixpath.dirname(config)
        temp = name.startswith(f".{paths.config.name}.tmp-")
        return (in_config_dir and (temp or p == config)) or head == str(paths.history_dir)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        self.map_path(path)  # refused before anything is created
        f = super().open(path, pflags, attrs)
        if pflags & _WRITE_FLAGS:
            self._box.counters.writes += 1
            if self._is_config(path):
                self._config_files.add(id(f))
        return f

    def close(self, file_obj: object) -> None:
        self._config_files.discard(id(file_obj))
        super().close(file_obj)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        box = self._box
        if box.faults.has(FaultKind.DISK_FULL):
            raise OSError(errno.ENOSPC, "No space left on device")
        box.counters.config_bytes_received += len(data)
        if id(file_obj) in self._config_files:
            box.counters.config_file_bytes += len(data)
        if box.faults.has(FaultKind.DROP_TRANSFER):
            super().write(file_obj, offset, data[: len(data) // 2])
            self.connection.abort()
            raise asyncssh.SFTPFailure("connection dropped in the middle of a transfer")
        return cast(int, super().write(file_obj, offset, data))

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        if self._box.faults.has(FaultKind.DISK_FULL):
            raise OSError(errno.ENOSPC, "No space left on device")
        super().mkdir(path, attrs)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        """Links may only point inside the root (checked by resolving the target)."""
        target = (
            oldpath
            if posixpath.isabs(oldpath)
            else posixpath.join(posixpath.dirname(newpath), oldpath)
        )
        self.map_path(target)
        super().symlink(oldpath, newpath)
