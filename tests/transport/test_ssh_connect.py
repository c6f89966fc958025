"""Connecting: timeouts, retries with backoff for connection failures only, pooled connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.testing.ports import closed_port
from reconciler.testing.sshserver import ClientKey, LoopbackSshServer
from reconciler.transport.base import AuthError, BoxTransport, ConnectError
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget

from .conftest import Sleeps


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts TCP and never says a word of SSH."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


async def test_silent_server_is_bounded_by_the_connect_timeout(
    target: SshTarget, silent_port: int, sleeps: Sleeps
) -> None:
    """A box accepting TCP but never speaking SSH: ConnectError after the retries, no hang."""
    opts = SshOptions(connect_timeout=0.3, connect_retries=1)
    async with SshPool(opts, sleep=sleeps) as pool:
        with pytest.raises(ConnectError) as err:
            await pool.box(replace(target, port=silent_port)).read_file(Path("/etc/hostname"))
    assert "no SSH answer" in str(err.value)
    assert "within 0.3s" in str(err.value)
    assert "after 2 attempts" in str(err.value)
    assert sleeps.delays == [0.25]


async def test_refused_port_gives_connect_error_after_bounded_retries(
    pool: SshPool, target: SshTarget, sleeps: Sleeps
) -> None:
    """Connection refused is retried with doubling backoff, then ConnectError."""
    with pytest.raises(ConnectError) as err:
        await pool.box(replace(target, port=closed_port())).run(["true"], timeout=5)
    assert err.value.box == "box-1"
    assert err.value.operation == "connect"
    assert "after 3 attempts" in str(err.value)
    assert sleeps.delays == [0.25, 0.5]


async def test_refused_login_is_auth_error_and_not_retried(
    pool: SshPool,
    target: SshTarget,
    ssh_server: LoopbackSshServer,
    tmp_path: Path,
    sleeps: Sleeps,
) -> None:
    """A key the box does not accept gives AuthError at once, with no retry."""
    stranger = ClientKey(tmp_path / "stranger")
    with pytest.raises(AuthError) as err:
        await pool.box(replace(target, key=stranger.path)).run(["true"], timeout=5)
    assert "refused our key" in str(err.value)
    assert ssh_server.stats.connections == 1
    assert sleeps.delays == []


async def test_one_connection_per_box_is_reused(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, box_dir: Path
) -> None:
    """All operations on a box, and agents sharing its (host, port, user), reuse one connection."""
    box = pool.box(target)
    twin = pool.box(replace(target, name="box-1-second-agent"))
    await box.write_atomic(box_dir / "a", b"1")
    await asyncio.gather(
        box.read_file(box_dir / "a"), twin.read_file(box_dir / "a"), box.run(["true"], timeout=5)
    )
    await twin.stat(box_dir / "a")
    assert ssh_server.stats.connections == 1
    assert ssh_server.stats.sftp_sessions == 1


async def test_closed_box_reconnects_on_next_operation(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer
) -> None:
    """close() drops the box's connection; the next operation opens a new one."""
    box = pool.box(target)
    await box.run(["true"], timeout=5)
    await box.close()
    await box.run(["true"], timeout=5)
    assert ssh_server.stats.connections == 2


async def test_ssh_box_is_a_box_transport(pool: SshPool, target: SshTarget) -> None:
    """SshBox satisfies the BoxTransport protocol."""
    assert isinstance(pool.box(target), BoxTransport)


async def test_many_boxes_are_read_concurrently_under_a_small_bound(
    client_key: ClientKey, tmp_path: Path
) -> None:
    """Ten boxes read with concurrency 3 all answer, each on its own connection."""
    servers = [await LoopbackSshServer(client_key).start() for _ in range(10)]
    try:
        kh = tmp_path / "kh"
        kh.write_text("".join(s.known_hosts_line() for s in servers))
        (tmp_path / "f").write_bytes(b"x")
        targets = [
            SshTarget(f"b{i}", "127.0.0.1", s.port, "agent", client_key.path, kh)
            for i, s in enumerate(servers)
        ]
        async with SshPool(SshOptions(concurrency=3)) as pool:
            got = await asyncio.gather(*(pool.box(t).read_file(tmp_path / "f") for t in targets))
        assert got == [b"x"] * 10
        assert [s.stats.connections for s in servers] == [1] * 10
    finally:
        for s in servers:
            await s.stop()
