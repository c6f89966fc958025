"""Real SSH servers on loopback for the transport tests (OpenSSH: see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.testing.sshserver import ClientKey, LoopbackSshServer
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget


class Sleeps:
    """A fake sleep for the pool's retry backoff: records delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def client_key(tmp_path: Path) -> ClientKey:
    return ClientKey(tmp_path / "keys" / "client_ed25519")


@pytest.fixture
async def ssh_server(client_key: ClientKey) -> AsyncIterator[LoopbackSshServer]:
    server = await LoopbackSshServer(client_key).start()
    yield server
    await server.stop()


@pytest.fixture
def known_hosts(tmp_path: Path, ssh_server: LoopbackSshServer) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(ssh_server.known_hosts_line())
    return path


@pytest.fixture
def target(ssh_server: LoopbackSshServer, client_key: ClientKey, known_hosts: Path) -> SshTarget:
    return SshTarget("box-1", "127.0.0.1", ssh_server.port, "agent", client_key.path, known_hosts)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def pool(sleeps: Sleeps) -> AsyncIterator[SshPool]:
    opts = SshOptions(connect_timeout=5, op_timeout=10, connect_retries=2, backoff=0.25)
    async with SshPool(opts, sleep=sleeps) as p:
        yield p


@pytest.fixture
def box_dir(tmp_path: Path) -> Path:
    d = tmp_path / "box"
    d.mkdir()
    return d
