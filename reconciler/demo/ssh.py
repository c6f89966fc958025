"""The SSH side of a demo box: a real asyncssh server on the box's own port.

The endpoint owns its listening socket and hands each accepted connection to
`asyncssh.run_server`, so that it can also misbehave on purpose: hang (accept,
then never answer), refuse (the port closed), present another host key, reset
every open connection at once (TCP RST, as a network reset would), or take its
time over reload and restart. Only public-key auth for the demo user; exec runs
only the box's configured command lines (anything else exits 127); SFTP is
chrooted to the box's root.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

import asyncssh

from reconciler.demo.faults import FaultKind
from reconciler.demo.sftp import ChrootSFTPServer

if TYPE_CHECKING:
    from reconciler.demo.box import DemoBox

log = logging.getLogger(__name__)
_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {l_onoff=1, l_linger=0}


class _BoxServer(asyncssh.SSHServer):
    """Authentication and connection bookkeeping for one connection."""

    def __init__(self, endpoint: SshEndpoint) -> None:
        self._endpoint = endpoint
        self._conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self._conn = conn
        self._endpoint.conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        box = self._endpoint.box
        return bool(username == box.spec.user and key.public_data == box.client_key.public_data)


def listening_socket(port: int = 0) -> socket.socket:
    """A non-blocking TCP socket listening on 127.0.0.1:`port` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class SshEndpoint:
    """A box's SSH listener and its connections."""

    def __init__(self, box: DemoBox, sock: socket.socket) -> None:
        self.box = box
        self.port: int = sock.getsockname()[1]
        self.conns: set[Any] = set()
        self._sock: socket.socket | None = sock
        self._accepting: asyncio.Task[None] | None = None
        self._hung: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._options = self._make_options(box.host_key)
        self._alt_options: asyncssh.SSHServerConnectionOptions | None = None

    def _make_options(self, host_key: asyncssh.SSHKey) -> asyncssh.SSHServerConnectionOptions:
        return asyncssh.SSHServerConnectionOptions(
            server_factory=lambda: _BoxServer(self),
            server_host_keys=[host_key],
            process_factory=self._process,
            sftp_factory=lambda chan: ChrootSFTPServer(chan, self.box),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
            login_timeout=30,
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._sock is not None and self._accepting is None:
            self._accepting = asyncio.create_task(self._accept_loop(self._sock))

    async def stop(self) -> None:
        self._close_listener()
        self._release_hung()
        for conn in list(self.conns):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _close_listener(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _release_hung(self) -> None:
        for sock in self._hung:
            sock.close()
        self._hung.clear()

    def faults_changed(self) -> None:
        """Follow the box's faults: close or reopen the port, release hung connections."""
        faults = self.box.faults
        if faults.has(FaultKind.SSH_REFUSED):
            self._close_listener()
        elif self._sock is None:
            try:  # SO_REUSEADDR: connections in TIME_WAIT do not block the port
                self._sock = listening_socket(self.port)
            except OSError as exc:
                raise OSError(
                    exc.errno, f"{self.box.name}: cannot listen on port {self.port} again: {exc}"
                ) from None
            self.start()
        if not faults.has(FaultKind.SSH_HANG):
            self._release_hung()
        if faults.take(FaultKind.CONNECTION_RESET):
            self.reset_connections()

    def reset_connections(self) -> int:
        """Reset every open SSH connection now (RST, not FIN: as a network reset); how many."""
        conns = list(self.conns)
        for conn in conns:
            sock = conn.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST and drops unsent data
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            conn.abort()
        self.box.counters.connection_resets += len(conns)
        return len(conns)

    # -- connections -----------------------------------------------------------------

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    await asyncio.sleep(0.1)
                    continue
                raise
            self.box.counters.ssh_connections += 1
            if self.box.faults.has(FaultKind.SSH_HANG):
                self._hung.append(conn)
                continue
            task = asyncio.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        options = self._options
        if self.box.faults.has(FaultKind.HOST_KEY_CHANGED):
            if self._alt_options is None:
                self._alt_options = self._make_options(asyncssh.generate_private_key("ssh-ed25519"))
            options = self._alt_options
        try:
            await asyncssh.run_server(conn, options=options)
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            log.debug("%s: SSH handshake failed: %s", self.box.name, exc)
            conn.close()

    async def _process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        """Exec: run one of the box's configured command lines; anything else exits 127."""
        command = process.command
        if command is None:
            process.stderr.write("this box has no interactive shell\n")
            process.exit(1)
            return
        delay = self.box.command_delay(command)
        if delay > 0 and await _client_left_within(process, delay):
            self.box.abandon_command(command)
            return
        result = self.box.run_command(command)
        if result.stdout:
            process.stdout.write(result.stdout)
        if result.stderr:
            process.stderr.write(result.stderr)
        process.exit(result.code)


async def _client_left_within(process: asyncssh.SSHServerProcess[str], seconds: float) -> bool:
    """Wait `seconds`; True when the client closed the session (or lost it) meanwhile.

    A slow command whose client gave up is abandoned, as a command dies with its
    session, so the demo never acts on a reload the rollout already counted as failed.
    """
    try:
        await asyncio.wait_for(process.wait_closed(), seconds)
    except TimeoutError:
        return False
    return True
