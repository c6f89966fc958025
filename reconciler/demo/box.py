"""One demo box: a simulated agent behind a real SSH server and a real HTTP server.

A box is described by a `BoxSpec` (plain data, so worker processes can be
handed one as JSON) and runs on two already-listening sockets. Its root
directory is what SFTP sees as `/`. The box holds the faults and the counters
that tests read ("the second apply wrote nothing").
"""

from __future__ import annotations

import asyncio
import functools
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import asyncssh

from reconciler.demo.agent import CommandResult, SimAgent, local_path
from reconciler.demo.faults import FaultKind, Faults
from reconciler.demo.http import HttpEndpoint, demo_dir_of
from reconciler.demo.provider import provider_of
from reconciler.demo.ssh import SshEndpoint
from reconciler.model.box import BoxPaths


@dataclass(frozen=True, slots=True)
class BoxSpec:
    """Everything a box needs to run, as plain data."""

    name: str
    root: str
    host_key: str  # private host key file (OpenSSH format)
    client_pub: str  # the one public key allowed to log in
    user: str = "agent"
    config_path: str = "/etc/agent/config.yaml"
    secrets_path: str | None = None
    commands: dict[str, list[str]] = field(
        default_factory=lambda: {
            "reload": ["agentctl", "reload"],
            "restart": ["agentctl", "restart"],
            "health": ["agentctl", "health"],
        }
    )
    rate: float = 2.0
    base_error_rate: float = 0.01
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BoxSpec:
        return cls(**doc)


@dataclass
class Counters:
    """What happened to a box since it started (for tests, via the API or /_demo/counters)."""

    reloads: int = 0
    reload_failures: int = 0
    restarts: int = 0
    writes: int = 0  # files opened for writing over SFTP
    config_bytes_received: int = 0  # bytes written over SFTP
    config_file_bytes: int = 0  # of those, bytes of the config file or its history copies
    ssh_connections: int = 0
    sftp_sessions: int = 0  # SFTP subsystems started (after host key and login succeeded)
    commands: int = 0  # exec requests, allowed or not
    commands_abandoned: int = 0  # slow commands whose client left before they acted
    connection_resets: int = 0  # SSH connections reset by the connection-reset fault
    auth_failures: int = 0  # tasks failed on auth: no API key, or the provider refused it
    caller_refusals: int = 0  # inbound: callers whose token the agent refused (401)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@functools.lru_cache(maxsize=64)
def _public_key(path: str) -> asyncssh.SSHKey:
    return asyncssh.read_public_key(path)


class DemoBox:
    """A running demo box."""

    def __init__(
        self,
        spec: BoxSpec,
        ssh_sock: Any,
        http_sock: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.root = Path(spec.root)
        self.paths = BoxPaths.of(spec.config_path, spec.secrets_path)
        self.host_key = asyncssh.read_private_key(spec.host_key)
        self.client_key = _public_key(spec.client_pub)
        self.faults = Faults()
        self.counters = Counters()
        self.agent = SimAgent(
            spec.name,
            self.root,
            self.paths,
            self.faults,
            provider=provider_of(demo_dir_of(self.root)),
            count_auth=self._count_auth,
            rate=spec.rate,
            base_error_rate=spec.base_error_rate,
            seed=spec.seed,
            clock=clock,
        )
        self._commands = {shlex.join(argv): action for action, argv in spec.commands.items()}
        self.ssh = SshEndpoint(self, ssh_sock)
        self.http = HttpEndpoint(self, http_sock)

    def _count_auth(self, tasks: int) -> None:
        self.counters.auth_failures += tasks

    # -- addresses -------------------------------------------------------------------

    @property
    def ssh_port(self) -> int:
        return self.ssh.port

    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    def path(self, box_path: str | PurePosixPath) -> Path:
        """The local file behind an absolute path on the box."""
        return local_path(self.root, box_path)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.agent.start()
        self.ssh.start()
        await self.http.start()

    async def stop(self) -> None:
        await asyncio.gather(self.ssh.stop(), self.http.stop())

    # -- what tests and the control API do ---------------------------------------------

    def fault(self, kind: FaultKind | str, value: float | None = None) -> None:
        """Inject a fault (it stays until cleared; crash-on-reload and connection-reset once)."""
        self.faults.set(FaultKind(kind), value)
        self.ssh.faults_changed()

    def clear(self, kind: FaultKind | str | None = None) -> None:
        """Remove one fault, or all of them."""
        self.faults.clear(None if kind is None else FaultKind(kind))
        self.ssh.faults_changed()

    def work(self, seconds: float) -> None:
        """Do `seconds` worth of tasks now (tests use it instead of waiting)."""
        self.agent.tick(seconds)

    def state(self) -> dict[str, Any]:
        """The box's inner state, for humans and tests."""
        how = self.agent.behaviour
        return {
            "agent": self.name,
            "running": self.agent.crashed is None,
            "reason": self.agent.crashed,
            "loaded_sha256": self.agent.loaded_sha,
            "model": how.model if how else None,
            "error_rate": how.error_rate if how else None,
            "error_reason": (self.agent.auth_problem() or how.error_reason) if how else None,
            "faults": self.faults.as_dict(),
            "counters": self.counters.as_dict(),
        }

    def command_delay(self, line: str) -> float:
        """Seconds a command waits before it acts: the slow-reload fault, for reload and restart."""
        if self._commands.get(line.strip()) in ("reload", "restart"):
            return self.faults.value(FaultKind.SLOW_RELOAD)
        return 0.0

    def abandon_command(self, line: str) -> None:
        """Count a slow command whose client left before it acted (it never ran)."""
        self.counters.commands += 1
        self.counters.commands_abandoned += 1

    def run_command(self, line: str) -> CommandResult:
        """Run an exec request: only the configured command lines; anything else exits 127."""
        self.counters.commands += 1
        action = self._commands.get(line.strip())
        if action == "reload":
            self.counters.reloads += 1
            result = self.agent.reload()
            if result.code:
                self.counters.reload_failures += 1
            return result
        if action == "restart":
            self.counters.restarts += 1
            return self.agent.start()
        if action == "health":
            alive = self.agent.crashed is None
            return CommandResult(0 if alive else 1, self.agent.health_json().decode())
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        return CommandResult(127, stderr=f"sh: 1: {word or line!r}: not found\n")
