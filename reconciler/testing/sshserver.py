"""A small real SSH server (asyncssh) on 127.0.0.1 for tests and benches: SFTP and exec.

Each server has its own host key, accepts one client key, serves SFTP on this
machine's real filesystem (absolute paths) and runs commands with /bin/sh. A
`Faults` object injects failures a test needs (failing SFTP writes). Unlike the
demo boxes (reconciler/demo/) it simulates no agent: it is the plain edge.

`python -m reconciler.testing.sshserver --n N --dir DIR` starts N of them in
their own process (so a bench measures the client alone), writes
DIR/targets.json and DIR/known_hosts, prints "ready" and serves until stdin
closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from reconciler.model.box import BoxPaths


@dataclass
class Faults:
    """Failures to inject into a running server."""

    fail_writes: bool = False  # every SFTP write fails, as on a full disk


@dataclass
class Stats:
    """What clients did to a server: to prove, e.g., that a refused client never logged in."""

    connections: int = 0
    logins: int = 0
    sftp_sessions: int = 0
    commands: int = 0


class _Server(asyncssh.SSHServer):
    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._stats.connections += 1

    def auth_completed(self) -> None:
        self._stats.logins += 1


class _Sftp(asyncssh.SFTPServer):
    def __init__(
        self, chan: asyncssh.SSHServerChannel[bytes], faults: Faults, stats: Stats
    ) -> None:
        super().__init__(chan)
        self._faults = faults
        stats.sftp_sessions += 1

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if self._faults.fail_writes:
            raise asyncssh.SFTPFailure("No space left on device")
        return super().write(file_obj, offset, data)


class ClientKey:
    """A client key pair written to disk (OpenSSH format), for targets to log in with."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            self.key = asyncssh.read_private_key(str(path))
        else:
            self.key = asyncssh.generate_private_key("ssh-ed25519")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.key.write_private_key(str(path))
            path.chmod(0o600)
            self.key.write_public_key(str(path) + ".pub")
        self.public = self.key.convert_to_public()


@dataclass
class LoopbackSshServer:
    """One asyncssh server on 127.0.0.1:<free port>, trusting `client` (start() / stop())."""

    client: ClientKey
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )
    port: int = 0
    _acceptor: asyncssh.SSHAcceptor | None = None
    _children: set[asyncio.subprocess.Process] = field(default_factory=set)
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> LoopbackSshServer:
        """Listen on a free loopback port."""
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=lambda: _Server(self.stats),
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                self.client.public.export_public_key().decode()
            ),
            sftp_factory=lambda chan: _Sftp(chan, self.faults, self.stats),
            process_factory=self._exec,
            encoding=None,
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()
        return self

    async def stop(self) -> None:
        """Kill running commands, close the listener and every connection."""
        for child in list(self._children):
            _kill(child)
        if self._running:
            await asyncio.wait(list(self._running), timeout=5)
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        """This server's known_hosts line."""
        alg, blob = self.host_key.export_public_key().decode().split()[:2]
        return f"[{host}]:{self.port} {alg} {blob}\n"

    async def _exec(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.stats.commands += 1
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        child = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            process.command or "",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole on stop or hang-up
        )
        self._children.add(child)
        done = asyncio.ensure_future(child.communicate())
        hangup = asyncio.ensure_future(process.channel.wait_closed())
        try:
            await asyncio.wait({done, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                _kill(child)
            out, err = await done
        finally:
            hangup.cancel()
            self._children.discard(child)
            _kill(child)
            await child.wait()
        with contextlib.suppress(Exception):
            process.stdout.write(out)
            process.stderr.write(err)
            code = child.returncode
            process.exit(code if code is not None and code >= 0 else 255)


def _kill(child: asyncio.subprocess.Process) -> None:
    """Kill a command's whole process group (sh and whatever it started)."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


async def _serve(n: int, root: Path) -> None:
    client = ClientKey(root / "client_ed25519")
    servers = [await LoopbackSshServer(client).start() for _ in range(n)]
    known = root / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in servers))
    targets = []
    for i, s in enumerate(servers):
        box = root / "boxes" / f"box-{i:04d}"
        box.mkdir(parents=True, exist_ok=True)
        paths = BoxPaths.of(str(box / "agent.yaml"))
        Path(str(paths.config)).write_bytes(b"model: demo\nmax_tokens: 1024\n")
        Path(str(paths.stamp)).write_bytes(b'{"stamp_version": 1}\n')
        targets.append({
            "name": f"box-{i:04d}", "host": "127.0.0.1", "port": s.port, "user": "agent",
            "key": str(client.path), "known_hosts": str(known),
            "config_path": str(paths.config), "reload": ["true"],
        })  # fmt: skip
    (root / "targets.json").write_text(json.dumps(targets, indent=1))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin, lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    for s in servers:
        await s.stop()


def main() -> None:
    """Serve N loopback SSH boxes until stdin closes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dir", type=Path, required=True)
    a = ap.parse_args()
    asyncio.run(_serve(a.n, a.dir.absolute()))


if __name__ == "__main__":
    main()
