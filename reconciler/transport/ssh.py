"""Boxes over SSH (asyncssh): one pooled connection per box, files by SFTP, commands by exec.

`SshPool` lives for one command. It opens at most one connection per
(host, port, user), lazily, on the first operation, with a connect timeout and
retries with backoff for connection failures only (never for a refused host key
or a refused login). A pool-wide semaphore bounds the handshakes and operations
in flight. `pool.box(target)` gives a `BoxTransport`; every asyncssh and OSError
failure is translated here into the `TransportError` tree of base.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Final

import asyncssh

from reconciler.model.agent import Agent
from reconciler.model.fleet import Connection
from reconciler.transport.base import (
    AuthError,
    CommandResult,
    ConnectError,
    FileStat,
    HostKeyError,
    OperationTimeout,
    RemoteError,
    TransportError,
)
from reconciler.transport.hostkeys import HostKeyCheck, KnownHostsStore

Sleep = Callable[[float], Awaitable[None]]
PoolKey = tuple[str, int, str]
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to reach one box: address, login, key, and the known_hosts to check it against."""

    name: str
    host: str
    port: int = 22
    user: str = "root"
    key: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def of(cls, agent: Agent, root: Path) -> SshTarget:
        """The target of an agent; relative key and known_hosts paths are relative to root."""

        def resolve(p: str | None) -> Path | None:
            return None if p is None else (root / Path(p).expanduser()).absolute()

        return cls(
            agent.name, agent.host, agent.port, agent.user, resolve(agent.key),
            resolve(agent.known_hosts),
        )  # fmt: skip

    @property
    def pool_key(self) -> PoolKey:
        return (self.host, self.port, self.user)


# AES-GCM first: asyncssh builds a new cipher object per packet for chacha20-poly1305, which
# costs a fleet-wide command about a third of its CPU; every OpenSSH server offers AES-GCM.
_CIPHERS: Final = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)


@dataclass(frozen=True, slots=True)
class SshOptions:
    """Timeouts, concurrency and retries of a pool (fleet.yaml `connection:` gives them)."""

    connect_timeout: float = 10.0
    op_timeout: float = 30.0
    concurrency: int = 256
    connect_retries: int = 2
    backoff: float = 0.25  # seconds before the first retry; doubles each time
    trust_on_first_use: bool = False

    @classmethod
    def from_connection(cls, conn: Connection, *, trust_on_first_use: bool = False) -> SshOptions:
        return cls(
            connect_timeout=conn.connect_timeout_s,
            op_timeout=conn.command_timeout_s,
            concurrency=conn.concurrency,
            connect_retries=conn.connect_retries,
            trust_on_first_use=trust_on_first_use,
        )


class _Client(asyncssh.SSHClient):
    """Hands the host-key decision to our HostKeyCheck."""

    def __init__(self, check: HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.validate(addr, key)


@contextlib.contextmanager
def _errors(box: str, operation: str, on_lost: Callable[[], None] | None = None) -> Iterator[None]:
    """Translate asyncssh and OS failures of one operation into TransportErrors."""
    try:
        yield
    except TransportError:
        raise
    except asyncssh.PermissionDenied as exc:
        raise AuthError(box, operation, f"login refused: {exc.reason}") from None
    except asyncssh.SFTPError as exc:
        raise RemoteError(box, operation, f"SFTP: {exc.reason} (code {exc.code})") from None
    except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
        if on_lost is not None:
            on_lost()
        raise ConnectError(box, operation, f"connection lost: {exc.reason}") from None
    except asyncssh.ChannelOpenError as exc:
        raise RemoteError(box, operation, f"channel refused: {exc.reason}") from None
    except TimeoutError:
        raise OperationTimeout(box, operation, "timed out") from None
    except asyncssh.Error as exc:
        raise RemoteError(box, operation, str(exc.reason)) from None
    except OSError as exc:
        if on_lost is not None:
            on_lost()
        raise ConnectError(box, operation, f"{exc.strerror or exc}") from None


@dataclass
class _Conn:
    """A live connection and its SFTP session (opened on first use)."""

    ssh: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def sftp_client(self) -> asyncssh.SFTPClient:
        async with self.lock:
            if self.sftp is None:
                self.sftp = await self.ssh.start_sftp_client()
            return self.sftp

    def close(self) -> None:
        if self.sftp is not None:
            self.sftp.exit()
        self.ssh.close()


class SshPool:
    """One connection per (host, port, user) for the life of a command; `box()` hands out boxes."""

    def __init__(self, options: SshOptions | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        self.options = options or SshOptions()
        self._sleep = sleep
        self._known = KnownHostsStore()
        self._keys: dict[Path, asyncssh.SSHKey] = {}
        self._conns: dict[PoolKey, _Conn] = {}
        self._locks: dict[PoolKey, asyncio.Lock] = {}
        self._refused: dict[tuple[PoolKey, Path | None, Path | None], TransportError] = {}
        self._slots = asyncio.Semaphore(self.options.concurrency)

    def box(self, target: SshTarget) -> SshBox:
        """The box at target; nothing connects until its first operation."""
        return SshBox(self, target)

    async def __aenter__(self) -> SshPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection of the pool."""
        conns = list(self._conns.values())
        self._conns.clear()
        for c in conns:
            c.close()
        for c in conns:
            with contextlib.suppress(Exception):
                await c.ssh.wait_closed()

    def _drop(self, key: PoolKey) -> None:
        c = self._conns.pop(key, None)
        if c is not None:
            c.close()

    @contextlib.asynccontextmanager
    async def slot(self) -> Any:
        """One of the pool's `concurrency` slots for an operation in flight."""
        async with self._slots:
            yield

    async def conn(self, target: SshTarget) -> _Conn:
        """The target's pooled connection, connecting (with retries) when there is none."""
        key = target.pool_key
        if (c := self._conns.get(key)) is not None:
            return c
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (c := self._conns.get(key)) is not None:
                return c
            verdict = (key, target.known_hosts, target.key)
            if (refused := self._refused.get(verdict)) is not None:
                raise refused
            try:
                ssh = await self._connect_with_retries(target)
            except (HostKeyError, AuthError) as exc:
                self._refused[verdict] = exc  # never retried within a command
                raise
            c = self._conns[key] = _Conn(ssh)
            return c

    async def _connect_with_retries(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        attempt = 0
        while True:
            try:
                async with self._slots:
                    return await self._connect(target)
            except ConnectError as exc:
                if not exc.retryable or attempt >= self.options.connect_retries:
                    if attempt:
                        exc.message += f" (after {attempt + 1} attempts)"
                        exc.args = (f"{exc.box}: {exc.operation}: {exc.message}",)
                    raise
                await self._sleep(self.options.backoff * 2**attempt)
                attempt += 1

    def _private_key(self, target: SshTarget) -> list[asyncssh.SSHKey]:
        if target.key is None:
            return []
        if target.key not in self._keys:
            try:
                self._keys[target.key] = asyncssh.read_private_key(str(target.key))
            except (OSError, asyncssh.KeyImportError, ValueError) as exc:
                raise TransportError(
                    target.name, "connect", f"cannot load private key {target.key}: {exc}"
                ) from None
        return [self._keys[target.key]]

    async def _connect(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        box, opts = target.name, self.options
        known_hosts = (target.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        expected = self._known.expected(box, known_hosts, target.host, "", target.port)
        check = HostKeyCheck(
            box, target.host, target.port, known_hosts, expected, self._known,
            trust_on_first_use=opts.trust_on_first_use,
        )  # fmt: skip
        extra: dict[str, Any] = {}
        if expected.keys:
            extra["server_host_key_algs"] = expected.algorithms
        client_keys = self._private_key(target)
        timeout = opts.connect_timeout
        try:
            conn, _ = await asyncssh.create_connection(
                lambda: _Client(check),
                target.host,
                target.port,
                username=target.user,
                known_hosts=([], [], []),  # every key goes to _Client.validate_host_public_key
                client_keys=client_keys,
                agent_path=None,
                password=None,
                kbdint_auth=False,
                gss_auth=False,
                preferred_auth="publickey",
                config=None,
                x509_trusted_certs=None,
                connect_timeout=timeout,
                encryption_algs=_CIPHERS,
                **extra,
            )
            return conn
        except asyncssh.HostKeyNotVerifiable as exc:
            raise check.refusal or check.generic_refusal(exc.reason) from None
        except asyncssh.PermissionDenied:
            raise AuthError(
                box, "connect",
                f"{target.user}@{target.host}:{target.port} refused our key "
                f"{target.key or '(none configured)'}; install its public key for that user",
            ) from None  # fmt: skip
        except TimeoutError:
            raise ConnectError(
                box, "connect", f"no SSH answer from {target.host}:{target.port} within {timeout}s"
            ) from None
        except asyncssh.ConnectionLost as exc:
            raise ConnectError(
                box, "connect", f"{target.host}:{target.port} dropped the connection: {exc.reason}"
            ) from None
        except asyncssh.DisconnectError as exc:
            err = ConnectError(
                box, "connect", f"{target.host}:{target.port} ended the handshake: {exc.reason}"
            )
            err.retryable = False
            raise err from None
        except OSError as exc:
            raise ConnectError(
                box, "connect", f"cannot reach {target.host}:{target.port}: {exc.strerror or exc}"
            ) from None
        except asyncssh.Error as exc:
            err = ConnectError(box, "connect", f"{target.host}:{target.port}: {exc.reason}")
            err.retryable = False
            raise err from None


def _abs(path: PurePosixPath | str) -> str:
    p = PurePosixPath(path)
    if not p.is_absolute():
        raise ValueError(f"box paths are absolute posix paths, got {str(path)!r}")
    return str(p)


@dataclass
class SshBox:
    """A BoxTransport over the pool's connection to one box."""

    pool: SshPool
    target: SshTarget

    @property
    def name(self) -> str:
        return self.target.name

    def _lost(self) -> None:
        self.pool._drop(self.target.pool_key)

    @contextlib.asynccontextmanager
    async def _sftp(self, operation: str, path: str) -> Any:
        """An SFTP session, inside a pool slot, the op timeout and the error translation."""
        conn = await self.pool.conn(self.target)
        op = f"{operation} {path}"
        with _errors(self.name, op, self._lost):
            async with self.pool.slot(), asyncio.timeout(self.pool.options.op_timeout):
                yield await conn.sftp_client()

    async def read_file(self, path: PurePosixPath | str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        p = _abs(path)
        async with self._sftp("read", p) as sftp:
            try:
                async with sftp.open(p, "rb") as f:
                    data: bytes = await f.read()
                    return data
            except asyncssh.SFTPNoSuchFile:
                return None

    async def write_atomic(
        self, path: PurePosixPath | str, data: bytes, *, mode: int = 0o644
    ) -> None:
        """Temp file beside `path` (created with `mode`), write, fsync, chmod, posix-rename."""
        p = PurePosixPath(_abs(path))
        tmp = str(p.with_name(f".{p.name}.tmp-{secrets.token_hex(4)}"))
        async with self._sftp("write", str(p)) as sftp:
            attrs = asyncssh.SFTPAttrs(permissions=mode)
            try:
                f = await sftp.open(tmp, "xb", attrs=attrs)
            except asyncssh.SFTPNoSuchFile:  # the parent is missing: create it, once
                await sftp.makedirs(str(p.parent), exist_ok=True)
                f = await sftp.open(tmp, "xb", attrs=attrs)
            try:
                async with f:
                    await f.write(data)
                    await f.fsync()
                await sftp.chmod(tmp, mode)
                await sftp.posix_rename(tmp, str(p))
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(sftp.remove(tmp))
                raise

    async def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """Run argv (shlex-joined); non-zero exit is a result, a timeout OperationTimeout."""
        command = shlex.join(argv)
        conn = await self.pool.conn(self.target)
        op = f"run {command!r}"
        with _errors(self.name, op, self._lost):
            try:
                async with (
                    self.pool.slot(),
                    asyncio.timeout(timeout + self.pool.options.op_timeout),
                ):
                    done = await conn.ssh.run(
                        command, check=False, timeout=timeout, encoding="utf-8", errors="replace"
                    )
            except asyncssh.TimeoutError:
                raise OperationTimeout(
                    self.name, op, f"did not finish within {timeout}s; the command was stopped"
                ) from None
        status = done.exit_status
        if status is None or status < 0:
            status = done.returncode if done.returncode is not None else -1
        return CommandResult(status, str(done.stdout or ""), str(done.stderr or ""))

    async def mkdir(self, path: PurePosixPath | str) -> bool:
        """Create the directory (and missing parents); False when it already exists."""
        p = PurePosixPath(_abs(path))
        async with self._sftp("mkdir", str(p)) as sftp:
            try:
                try:
                    await sftp.mkdir(str(p))
                except asyncssh.SFTPNoSuchFile:  # the parent is missing: create it, once
                    await sftp.makedirs(str(p.parent), exist_ok=True)
                    await sftp.mkdir(str(p))
            except asyncssh.SFTPError:
                if await sftp.exists(str(p)):
                    return False
                raise
            return True

    async def remove(self, path: PurePosixPath | str) -> None:
        """Remove a file; a missing one is not an error."""
        p = _abs(path)
        async with self._sftp("remove", p) as sftp:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(p)

    async def rmdir(self, path: PurePosixPath | str) -> None:
        """Remove an empty directory; a missing one is not an error."""
        p = _abs(path)
        async with self._sftp("rmdir", p) as sftp:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.rmdir(p)

    async def rmtree(self, path: PurePosixPath | str) -> None:
        """Remove a small directory tree; a missing one is not an error."""
        p = _abs(path)
        async with self._sftp("rmtree", p) as sftp:
            if await sftp.exists(p):
                await sftp.rmtree(p)

    async def listdir(self, path: PurePosixPath | str) -> list[str]:
        """Sorted entry names; [] when the directory does not exist."""
        p = _abs(path)
        async with self._sftp("listdir", p) as sftp:
            try:
                names = await sftp.listdir(p)
            except asyncssh.SFTPNoSuchFile:
                return []
            return sorted(str(n) for n in names if n not in (".", ".."))

    async def rename(self, src: PurePosixPath | str, dst: PurePosixPath | str) -> None:
        """posix-rename src over dst."""
        s, d = _abs(src), _abs(dst)
        async with self._sftp("rename", f"{s} -> {d}") as sftp:
            await sftp.posix_rename(s, d)

    async def link(self, src: PurePosixPath | str, dst: PurePosixPath | str) -> None:
        """Hard-link src as dst (hardlink@openssh.com): a file appears without a byte sent."""
        s, d = _abs(src), _abs(dst)
        async with self._sftp("link", f"{s} -> {d}") as sftp:
            await sftp.link(s, d)

    async def stat(self, path: PurePosixPath | str) -> FileStat | None:
        """Size, mtime, mode; None when missing."""
        p = _abs(path)
        async with self._sftp("stat", p) as sftp:
            try:
                a = await sftp.stat(p)
            except asyncssh.SFTPNoSuchFile:
                return None
            return FileStat(int(a.size or 0), float(a.mtime or 0), int(a.permissions or 0))

    async def close(self) -> None:
        """Close this box's connection; the next operation reconnects."""
        self._lost()
