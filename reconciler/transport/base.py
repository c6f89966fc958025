"""What a box offers the reconciler, and how talking to it fails.

The rest of the program sees a box through `BoxTransport` (files by absolute
path, and the configured commands) and sees failures only as `TransportError`
subclasses, each naming the box and the operation. Library exceptions
(asyncssh, OSError, httpx) are translated where they are caught, in this
package, to the most specific type:

    TransportError            a box could not be talked to as asked
    ├── HostKeyError          host key unknown or changed: refused before any byte moved
    ├── AuthError             the box refused our key
    ├── ConnectError          refused, unreachable, or the handshake timed out
    ├── OperationTimeout      an operation (or a command) took longer than its timeout
    └── RemoteError           the box answered with a failure (disk full, permission, bad reply)

A command that exits non-zero is not an exception: it is a `CommandResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable

from reconciler.errors import BoxError

EXIT_ERROR = 1


class TransportError(BoxError):
    """A box could not be talked to as asked; names the box and the operation."""

    exit_code_hint: int = EXIT_ERROR
    retryable: bool = False

    def __init__(self, box: str, operation: str, message: str) -> None:
        self.box = box
        self.operation = operation
        self.message = message
        super().__init__(f"{box}: {operation}: {message}")


class HostKeyError(TransportError):
    """The box presented a host key that known_hosts does not hold (unknown or changed)."""

    def __init__(
        self,
        box: str,
        *,
        host: str,
        port: int,
        presented: str,
        expected: Sequence[str],
        known_hosts: str,
        revoked: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.presented = presented
        self.expected = tuple(expected)
        self.known_hosts = known_hosts
        where = host if port == 22 else f"[{host}]:{port}"
        keyscan = f"ssh-keyscan {host}" if port == 22 else f"ssh-keyscan -p {port} {host}"
        if revoked:
            message = (
                f"host key revoked: {where} presented {presented}, which {known_hosts} marks "
                f"@revoked; refused before login, nothing sent. Do not add it again: find out "
                f"why the box still uses a revoked key, and re-key it"
            )
        elif self.expected:
            message = (
                f"host key changed (REMOTE HOST IDENTIFICATION HAS CHANGED): {where} presented "
                f"{presented}, but {known_hosts} expects {', '.join(self.expected)}; refused "
                f"before login, nothing sent. If the box was really re-keyed, check its new "
                f"fingerprint ({presented}) out of band, then replace its line: "
                f"ssh-keygen -R '{where}' -f "
                f"{known_hosts} && {keyscan} >> {known_hosts}"
            )
        else:
            message = (
                f"host key unknown: {where} presented {presented}, and there is none for "
                f"it in {known_hosts}; refused before login, nothing sent. To trust it, "
                f"check its fingerprint ({presented}) out of band, then add it: "
                f"{keyscan} >> {known_hosts}"
            )
        super().__init__(box, "connect", message)

    @property
    def changed(self) -> bool:
        """True when known_hosts has a different key for the host (not merely none)."""
        return bool(self.expected)


class AuthError(TransportError):
    """The box refused our credentials."""


class ConnectError(TransportError):
    """The box could not be reached: refused, unreachable, reset, or the handshake timed out."""

    retryable = True


class OperationTimeout(TransportError):
    """An operation or command did not finish within its timeout."""


class RemoteError(TransportError):
    """The box answered with a failure: no space, permission denied, a malformed reply."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A finished command: exit status (negative: killed by that signal) and output."""

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True, slots=True)
class FileStat:
    """What stat() tells of a file on a box."""

    size: int
    mtime: float
    mode: int  # permission bits and file type, as st_mode


@runtime_checkable
class BoxTransport(Protocol):
    """One box: files by absolute posix path, and commands as argv lists."""

    @property
    def name(self) -> str:
        """The box's name in messages (the agent name)."""
        ...

    async def read_file(self, path: PurePosixPath) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...

    async def write_atomic(self, path: PurePosixPath, data: bytes, *, mode: int = 0o644) -> None:
        """Temp file in the same directory, write, fsync, chmod, rename over `path`."""
        ...

    async def run(
        self, argv: Sequence[str], *, timeout: float, read_only: bool = False
    ) -> CommandResult:
        """Run a command; a non-zero exit is a result, a timeout is OperationTimeout.

        `read_only=True` says the command changes nothing (a health command), so the
        transport may run it once more if the connection drops while it runs.
        """
        ...

    async def mkdir(self, path: PurePosixPath) -> bool:
        """Create a directory atomically; False when it already exists."""
        ...

    async def remove(self, path: PurePosixPath) -> None:
        """Remove a file; a missing file is not an error."""
        ...

    async def rmdir(self, path: PurePosixPath) -> None:
        """Remove an empty directory; a missing one is not an error."""
        ...

    async def rmtree(self, path: PurePosixPath) -> None:
        """Remove a (small) directory tree; a missing one is not an error."""
        ...

    async def listdir(self, path: PurePosixPath) -> list[str]:
        """Sorted names in a directory ('.' and '..' excluded); [] when it does not exist."""
        ...

    async def rename(self, src: PurePosixPath, dst: PurePosixPath) -> None:
        """posix-rename: replaces `dst` atomically."""
        ...

    async def stat(self, path: PurePosixPath) -> FileStat | None:
        """Size, mtime and mode, or None when it does not exist."""
        ...

    async def link(self, src: PurePosixPath, dst: PurePosixPath) -> None:
        """Hard-link `src` as `dst` on the box (no bytes move); `dst` must not exist."""
        ...

    async def realpath(self, path: PurePosixPath) -> PurePosixPath:
        """The canonical absolute path on the box: symlinks followed, `.`/`..` removed.

        What a write to `path` would really touch; check it (e.g. a config file's parent
        against connection.allowed_paths) before the first write. A missing last part is
        kept as it is; a missing parent or a link loop is a RemoteError.
        """
        ...

    async def close(self) -> None:
        """Close the box's connection (the next operation reconnects)."""
        ...
