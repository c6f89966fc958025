"""Boxes over SSH (asyncssh): one pooled connection per box, files by SFTP, commands by exec.

`SshPool` lives for one command. It opens at most one connection per
(host, port, user, key, known_hosts, host-key policy): everything that decides
whether a connection is trusted, so an agent with another key or a stricter
known_hosts never rides on a connection someone else's checks let in. It
connects lazily, on the first operation, with a connect timeout and retries
with backoff for connection failures only (never for a refused host key
or a refused login). A pool-wide semaphore bounds the handshakes and operations
in flight. `pool.box(target)` gives a `BoxTransport`; every asyncssh and OSError
failure is translated here into the `TransportError` tree of base.py.

A pooled connection can die between operations (a network reset during a
rollout's soak, the box's sshd restarted). The pool notices a closed
connection before it hands it out and replaces it: the next operation simply
runs on a new connection, after the same host-key check as the first connect.
The bound, per operation:

- at most two attempts, each on a live connection, so at most two (re)connects;
- each (re)connect makes at most `connect_retries + 1` tries, `connect_timeout`
  each, with a backoff of `backoff * 2**n` seconds between them: at most
  `SshOptions.connect_bound_s` seconds (30.75 s with the defaults: 3 tries of
  10 s, 0.25 + 0.5 s of backoff), plus any wait for a concurrency slot;
- a second attempt only when the first lost its connection *before the
  operation started* (the SFTP session or the command's channel could not be
  opened: nothing reached the box), or when the operation is read-only
  (`read_file`, `stat`, `listdir`, `run(read_only=True)`) and lost it mid-flight.
  A write, or a command, that loses its connection mid-flight raises
  ConnectError naming the box and the operation: it may have partly happened,
  so it is never replayed behind the caller's back;
- a refused host key or login is final: never retried, and remembered for the
  rest of the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Final, TypeVar

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
# (host, port, user, key, known_hosts, trust_on_first_use): all that decides trust.
PoolKey = tuple[str, int, str, Path | None, Path, bool]
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
ATTEMPTS_PER_OPERATION: Final = 2  # the first, and one more after a lost connection
T = TypeVar("T")
S = TypeVar("S")


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
    def pool_key(self) -> tuple[str, int, str, Path | None, Path]:
        """What decides this target's trust (the pool adds its host-key policy)."""
        known_hosts = (self.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        return (self.host, self.port, self.user, self.key, known_hosts)


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

    @property
    def connect_tries(self) -> int:
        """Tries of one (re)connect: the first and `connect_retries` more."""
        return self.connect_retries + 1

    def backoff_s(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0-based): backoff * 2**retry."""
        return self.backoff * 2.0**retry

    @property
    def connect_bound_s(self) -> float:
        """The most one (re)connect can take: every try timing out, every backoff waited.

        Time spent waiting for one of the pool's concurrency slots is not counted.
        """
        backoffs = sum(self.backoff_s(n) for n in range(self.connect_retries))
        return self.connect_tries * self.connect_timeout + backoffs


class _Client(asyncssh.SSHClient):
    """Hands the host-key decision to our HostKeyCheck."""

    def __init__(self, check: HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.validate(addr, key)


def _translate(box: str, operation: str, exc: Exception) -> TransportError:
    """The TransportError for an asyncssh or OS failure of one operation on a live connection."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(box, operation, f"login refused: {exc.reason}")
    if isinstance(exc, asyncssh.SFTPError):
        return RemoteError(box, operation, f"SFTP: {exc.reason} (code {exc.code})")
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectError(box, operation, f"connection lost: {exc.reason}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return RemoteError(box, operation, f"channel refused: {exc.reason}")
    if isinstance(exc, TimeoutError):
        return OperationTimeout(box, operation, "timed out")
    if isinstance(exc, asyncssh.Error):
        return RemoteError(box, operation, str(exc.reason))
    if isinstance(exc, OSError):
        return ConnectError(box, operation, f"{exc.strerror or exc}")
    raise exc


@dataclass
class _Conn:
    """A live connection and its SFTP session (opened on first use)."""

    ssh: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def alive(self) -> bool:
        """False once the connection closed or was lost (a reset the event loop has seen)."""
        return not self.ssh.is_closed()

    async def sftp_client(self) -> asyncssh.SFTPClient:
        async with self.lock:
            if self.sftp is None:
                self.sftp = await self.ssh.start_sftp_client()
            return self.sftp

    def close(self) -> None:
        if self.sftp is not None:
            self.sftp.exit()
        self.ssh.close()


async def _lost_reason(exc: BaseException, conn: _Conn) -> str | None:
    """Why `exc` means the connection itself went away, or None when the connection is fine.

    asyncssh reports a dead connection in several ways: ConnectionLost or a disconnect,
    SFTPConnectionLost (a request in flight) or SFTPNoConnection (a request after it),
    an OSError from the socket, or a refused channel once the connection is gone. The
    connection marks itself closed one event-loop turn after the loss: wait for it.
    """
    if isinstance(exc, asyncssh.PermissionDenied | TransportError):
        return None
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.SFTPNoConnection):
        return str(exc.reason)
    if isinstance(exc, asyncssh.SFTPConnectionLost | ConnectionError):
        return str(getattr(exc, "reason", None) or exc)
    if isinstance(exc, asyncssh.ChannelOpenError | asyncssh.SFTPError | OSError):
        await asyncio.sleep(0)
        if not conn.alive:
            return f"{getattr(exc, 'reason', None) or exc}"
    return None


class SshPool:
    """One connection per trust (`key_of`) for the life of a command; `box()` hands out boxes."""

    def __init__(self, options: SshOptions | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        self.options = options or SshOptions()
        self._sleep = sleep
        self._known = KnownHostsStore()
        self._keys: dict[Path, asyncssh.SSHKey] = {}
        self._conns: dict[PoolKey, _Conn] = {}
        self._locks: dict[PoolKey, asyncio.Lock] = {}
        self._refused: dict[PoolKey, TransportError] = {}
        self._slots = asyncio.Semaphore(self.options.concurrency)

    def key_of(self, target: SshTarget) -> PoolKey:
        """The pool key of target: host, port, user, key, known_hosts and host-key policy."""
        return (*target.pool_key, self.options.trust_on_first_use)

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

    def discard(self, key: PoolKey, conn: _Conn) -> None:
        """Forget a lost connection, unless another operation already replaced it."""
        if self._conns.get(key) is conn:
            del self._conns[key]
        conn.close()

    @contextlib.asynccontextmanager
    async def slot(self) -> Any:
        """One of the pool's `concurrency` slots for an operation in flight."""
        async with self._slots:
            yield

    async def conn(self, target: SshTarget) -> _Conn:
        """The target's live pooled connection; connects (with retries) when there is none.

        A pooled connection that has closed since its last use (reset, dropped by the
        box) is discarded here and replaced by a new one, host key checked again.
        """
        key = self.key_of(target)
        if (c := self._conns.get(key)) is not None and c.alive:
            return c
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (c := self._conns.get(key)) is not None:
                if c.alive:
                    return c
                self.discard(key, c)
            if (refused := self._refused.get(key)) is not None:
                raise refused
            try:
                ssh = await self._connect_with_retries(target)
            except (HostKeyError, AuthError) as exc:
                self._refused[key] = exc  # never retried within a command
                raise
            c = self._conns[key] = _Conn(ssh)
            return c

    async def _connect_with_retries(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """Connect in at most `connect_tries` tries with doubling backoff (connect_bound_s)."""
        attempt = 0
        while True:
            try:
                async with self._slots:
                    return await self._connect(target)
            except ConnectError as exc:
                if not exc.retryable or attempt >= self.options.connect_retries:
                    if attempt:
                        tries = f"{exc.message} (after {attempt + 1} attempts)"
                        raise ConnectError(exc.box, exc.operation, tries) from exc
                    raise
                await self._sleep(self.options.backoff_s(attempt))
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


def _terminate(process: asyncssh.SSHClientProcess[str]) -> None:
    """Ask a command that outlived its timeout to stop (SIGTERM; OpenSSH 7.9+ delivers it)."""
    with contextlib.suppress(Exception):
        process.terminate()


async def _no_session(conn: _Conn) -> _Conn:
    return conn


@dataclass
class SshBox:
    """A BoxTransport over the pool's connection to one box."""

    pool: SshPool
    target: SshTarget

    @property
    def name(self) -> str:
        return self.target.name

    def _lost(self) -> None:
        self.pool._drop(self.pool.key_of(self.target))

    async def _call(
        self,
        op: str,
        prepare: Callable[[_Conn], Awaitable[S]],
        act: Callable[[_Conn, S], Awaitable[T]],
        *,
        read_only: bool,
    ) -> T:
        """Run one operation on a live connection; once more on a new one if it was lost.

        `prepare` (open the SFTP session) changes nothing on the box: a connection lost
        there, or a command channel that could not be opened, means the operation never
        started, so it runs again on a new connection. A connection lost during `act`
        is retried only for a read-only operation. See the module docstring for the bound.
        """
        for attempt in range(1, ATTEMPTS_PER_OPERATION + 1):
            conn = await self.pool.conn(self.target)  # a closed connection is replaced here
            started = False
            try:
                session = await prepare(conn)
                started = True
                return await act(conn, session)
            except Exception as exc:
                reason = await _lost_reason(exc, conn)
                if reason is None:
                    raise _translate(self.name, op, exc) from None
                self.pool.discard(self.pool.key_of(self.target), conn)
                started = started and not isinstance(exc, asyncssh.ChannelOpenError)
                if attempt < ATTEMPTS_PER_OPERATION and (read_only or not started):
                    continue
                raise self._lost_error(op, reason, started=started, read_only=read_only) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost_error(self, op: str, reason: str, *, started: bool, read_only: bool) -> ConnectError:
        """The one-line error for an operation whose connection was lost (never retryable)."""
        if started and not read_only:
            message = (
                f"connection lost while it ran ({reason}); not replayed, as it may have "
                "taken effect on the box"
            )
        elif started:
            message = f"connection lost while it ran, and again on a new connection ({reason})"
        else:
            message = f"connection lost before it started, and again on a new one ({reason})"
        err = ConnectError(self.name, op, message)
        err.retryable = False
        return err

    async def _sftp(
        self,
        operation: str,
        path: str,
        body: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        *,
        read_only: bool = False,
    ) -> T:
        """Run `body` on the box's SFTP session, inside a pool slot and the op timeout."""

        async def session(conn: _Conn) -> asyncssh.SFTPClient:
            async with self.pool.slot(), asyncio.timeout(self.pool.options.op_timeout):
                return await conn.sftp_client()

        async def act(conn: _Conn, sftp: asyncssh.SFTPClient) -> T:
            async with self.pool.slot(), asyncio.timeout(self.pool.options.op_timeout):
                return await body(sftp)

        return await self._call(f"{operation} {path}", session, act, read_only=read_only)

    async def read_file(self, path: PurePosixPath | str) -> bytes | None:
        """The file's bytes, or None when it does not exist (read-only: may run twice)."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> bytes | None:
            try:
                async with sftp.open(p, "rb") as f:
                    data: bytes = await f.read()
                    return data
            except asyncssh.SFTPNoSuchFile:
                return None

        return await self._sftp("read", p, body, read_only=True)

    async def write_atomic(
        self, path: PurePosixPath | str, data: bytes, *, mode: int = 0o644
    ) -> None:
        """Temp file beside `path` (created with `mode`), write, fsync, chmod, posix-rename."""
        p = PurePosixPath(_abs(path))
        tmp = str(p.with_name(f".{p.name}.tmp-{secrets.token_hex(4)}"))

        async def body(sftp: asyncssh.SFTPClient) -> None:
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

        await self._sftp("write", str(p), body)

    async def run(
        self, argv: Sequence[str], *, timeout: float, read_only: bool = False
    ) -> CommandResult:
        """Run argv (shlex-joined); non-zero exit is a result, a timeout OperationTimeout.

        A command that outlives `timeout` is sent SIGTERM and its session closed.
        `read_only=True` (a health command) lets a command whose connection dropped
        while it ran run once more on a new connection; any other command that loses
        its connection mid-flight is a ConnectError, never replayed.
        """
        command = shlex.join(argv)
        op = f"run {command!r}"

        async def act(conn: _Conn, _: _Conn) -> CommandResult:
            async with (
                self.pool.slot(),
                asyncio.timeout(timeout + self.pool.options.op_timeout),
            ):
                process = await conn.ssh.create_process(command, encoding="utf-8", errors="replace")
                try:
                    done = await process.wait(check=False, timeout=timeout)
                except asyncssh.TimeoutError:
                    _terminate(process)
                    raise OperationTimeout(
                        self.name, op,
                        f"did not finish within {timeout:g}s (the command timeout); "
                        "sent it SIGTERM and closed its session",
                    ) from None  # fmt: skip
                finally:
                    process.close()
            return self._result(conn, done, op)

        return await self._call(op, _no_session, act, read_only=read_only)

    def _result(self, conn: _Conn, done: asyncssh.SSHCompletedProcess, op: str) -> CommandResult:
        """The command's result; a session that ended with no exit status is a failure."""
        status = done.exit_status
        if status is None and done.exit_signal is None:
            if not conn.alive:  # asyncssh ends the session quietly when the connection drops
                raise asyncssh.ConnectionLost("the session ended without an exit status")
            raise RemoteError(self.name, op, "the box ended the session without an exit status")
        if status is None or status < 0:
            status = done.returncode if done.returncode is not None else -1
        return CommandResult(status, str(done.stdout or ""), str(done.stderr or ""))

    async def mkdir(self, path: PurePosixPath | str) -> bool:
        """Create the directory (and missing parents); False when it already exists."""
        p = PurePosixPath(_abs(path))

        async def body(sftp: asyncssh.SFTPClient) -> bool:
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

        return await self._sftp("mkdir", str(p), body)

    async def remove(self, path: PurePosixPath | str) -> None:
        """Remove a file; a missing one is not an error."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(p)

        await self._sftp("remove", p, body)

    async def rmdir(self, path: PurePosixPath | str) -> None:
        """Remove an empty directory; a missing one is not an error."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.rmdir(p)

        await self._sftp("rmdir", p, body)

    async def rmtree(self, path: PurePosixPath | str) -> None:
        """Remove a small directory tree; a missing one is not an error."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> None:
            if await sftp.exists(p):
                await sftp.rmtree(p)

        await self._sftp("rmtree", p, body)

    async def listdir(self, path: PurePosixPath | str) -> list[str]:
        """Sorted entry names; [] when the directory does not exist (read-only)."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> list[str]:
            try:
                names = await sftp.listdir(p)
            except asyncssh.SFTPNoSuchFile:
                return []
            return sorted(str(n) for n in names if n not in (".", ".."))

        return await self._sftp("listdir", p, body, read_only=True)

    async def rename(self, src: PurePosixPath | str, dst: PurePosixPath | str) -> None:
        """posix-rename src over dst."""
        s, d = _abs(src), _abs(dst)

        async def body(sftp: asyncssh.SFTPClient) -> None:
            await sftp.posix_rename(s, d)

        await self._sftp("rename", f"{s} -> {d}", body)

    async def link(self, src: PurePosixPath | str, dst: PurePosixPath | str) -> None:
        """Hard-link src as dst (hardlink@openssh.com): a file appears without a byte sent."""
        s, d = _abs(src), _abs(dst)

        async def body(sftp: asyncssh.SFTPClient) -> None:
            await sftp.link(s, d)

        await self._sftp("link", f"{s} -> {d}", body)

    async def realpath(self, path: PurePosixPath | str) -> PurePosixPath:
        """The box's canonical path (SFTP realpath: links followed, dots removed; read-only)."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> PurePosixPath:
            return PurePosixPath(str(await sftp.realpath(p)))

        return await self._sftp("realpath", p, body, read_only=True)

    async def stat(self, path: PurePosixPath | str) -> FileStat | None:
        """Size, mtime, mode; None when missing (read-only)."""
        p = _abs(path)

        async def body(sftp: asyncssh.SFTPClient) -> FileStat | None:
            try:
                a = await sftp.stat(p)
            except asyncssh.SFTPNoSuchFile:
                return None
            return FileStat(int(a.size or 0), float(a.mtime or 0), int(a.permissions or 0))

        return await self._sftp("stat", p, body, read_only=True)

    async def close(self) -> None:
        """Close this box's connection; the next operation reconnects."""
        self._lost()
