"""A pooled connection that drops: replaced on the next operation, within a bound; never a replay.

Real parts only: a demo box in the test's event loop (real asyncssh server, SFTP,
exec) whose `connection-reset` fault resets every open SSH connection (TCP RST),
and the product's SshPool talking to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

import pytest

from reconciler.demo import DemoBox, DemoFleet, FaultKind
from reconciler.transport.base import ConnectError, HostKeyError
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget

from .conftest import Sleeps

CONFIG = PurePosixPath("/etc/agent/config.yaml")
OPTS = SshOptions(connect_timeout=5, op_timeout=10, connect_retries=2, backoff=0.25)


@pytest.fixture
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoFleet]:
    async with DemoFleet.start(tmp_path_factory.mktemp("demo"), agents=1) as f:
        yield f


@pytest.fixture
def box(fleet: DemoFleet) -> DemoBox:
    return fleet.box(fleet.names[0])


def target_of(fleet: DemoFleet, box: DemoBox) -> SshTarget:
    """How the product reaches the demo box: its port, the demo's key and known_hosts."""
    return SshTarget(
        box.name, "127.0.0.1", box.ssh_port, fleet.prepared.user, fleet.dir.key,
        fleet.dir.known_hosts,
    )  # fmt: skip


@pytest.fixture
async def pool(sleeps: Sleeps) -> AsyncIterator[SshPool]:
    async with SshPool(OPTS, sleep=sleeps) as p:
        yield p


async def reset_and_settle(box: DemoBox) -> None:
    """Reset the box's connections and let the client see it, as during a rollout's soak."""
    box.fault(FaultKind.CONNECTION_RESET)
    await asyncio.sleep(0.1)


async def test_reset_between_operations_reconnects_once_and_carries_on(
    fleet: DemoFleet, box: DemoBox, pool: SshPool, sleeps: Sleeps
) -> None:
    """After a reset the next read, command and write each succeed; one new connection in all."""
    b = pool.box(target_of(fleet, box))
    before = await b.read_file(CONFIG)
    assert before is not None and box.counters.ssh_connections == 1
    await reset_and_settle(box)
    assert box.counters.connection_resets == 1
    assert await b.stat(CONFIG) is not None
    assert (await b.run(["agentctl", "health"], timeout=5)).ok
    await b.write_atomic(PurePosixPath("/etc/agent/extra.txt"), b"written after the reset\n")
    assert box.path("/etc/agent/extra.txt").read_bytes() == b"written after the reset\n"
    assert box.counters.ssh_connections == 2
    assert sleeps.delays == []  # the new connection came at the first try


async def test_write_whose_connection_was_lost_before_it_started_runs_on_a_new_one(
    fleet: DemoFleet, box: DemoBox, pool: SshPool
) -> None:
    """A write as the first operation after a reset is not refused: nothing had reached the box."""
    b = pool.box(target_of(fleet, box))
    await b.stat(CONFIG)
    await reset_and_settle(box)
    await b.write_atomic(CONFIG, b"model: after-reset\n")
    assert box.path(CONFIG).read_bytes() == b"model: after-reset\n"
    assert (await b.run(["agentctl", "reload"], timeout=5)).ok
    assert box.counters.reloads == 1
    assert box.counters.ssh_connections == 2


async def test_reset_with_a_changed_host_key_refuses_the_reconnect(
    fleet: DemoFleet, box: DemoBox, pool: SshPool, sleeps: Sleeps
) -> None:
    """Reconnecting checks the host key again: changed, the box is refused and left untouched."""
    b = pool.box(target_of(fleet, box))
    old = await b.read_file(CONFIG)
    writes, sessions = box.counters.writes, box.counters.sftp_sessions
    box.fault(FaultKind.HOST_KEY_CHANGED)  # the box is re-keyed (or someone sits in between)
    await reset_and_settle(box)
    with pytest.raises(HostKeyError) as err:
        await b.write_atomic(CONFIG, b"model: should-never-land\n")
    assert "host key changed" in str(err.value)
    assert err.value.box == box.name and err.value.operation == "connect"
    assert str(fleet.dir.known_hosts) in str(err.value)
    assert f"ssh-keyscan -p {box.ssh_port} 127.0.0.1 >> {fleet.dir.known_hosts}" in str(err.value)
    with pytest.raises(HostKeyError):  # final for the command: not even tried again
        await b.run(["agentctl", "reload"], timeout=5)
    assert box.path(CONFIG).read_bytes() == old
    assert (box.counters.writes, box.counters.sftp_sessions) == (writes, sessions)
    assert box.counters.reloads == 0 and box.counters.commands == 0
    assert box.counters.ssh_connections == 2  # the first, and one refused reconnect
    assert sleeps.delays == []


async def test_reconnect_to_a_box_that_stays_down_is_bounded(
    fleet: DemoFleet, box: DemoBox, pool: SshPool, sleeps: Sleeps
) -> None:
    """Reset, then the port refuses: connect_retries + 1 tries with doubling backoff, then fail."""
    b = pool.box(target_of(fleet, box))
    await b.stat(CONFIG)
    box.fault(FaultKind.SSH_REFUSED)
    await reset_and_settle(box)
    with pytest.raises(ConnectError) as err:
        await b.read_file(CONFIG)
    assert "after 3 attempts" in str(err.value)
    assert sleeps.delays == [0.25, 0.5]


async def test_reconnect_to_a_hung_box_ends_within_the_stated_seconds(
    fleet: DemoFleet, box: DemoBox
) -> None:
    """Every try hangs: the reconnect gives up within connect_bound_s, after exactly 3 tries."""
    opts = SshOptions(connect_timeout=0.3, connect_retries=2, backoff=0.05)
    assert opts.connect_tries == 3
    assert opts.connect_bound_s == pytest.approx(3 * 0.3 + 0.05 + 0.1)
    async with SshPool(opts) as pool:
        b = pool.box(target_of(fleet, box))
        await b.stat(CONFIG)
        box.fault(FaultKind.SSH_HANG)
        await reset_and_settle(box)
        started = time.monotonic()
        with pytest.raises(ConnectError) as err:
            await b.stat(CONFIG)
        took = time.monotonic() - started
    assert "no SSH answer" in str(err.value)
    assert took <= opts.connect_bound_s + 0.5
    assert box.counters.ssh_connections == 1 + 3


async def test_read_lost_mid_flight_is_retried_once_on_a_new_connection(
    fleet: DemoFleet, box: DemoBox, pool: SshPool
) -> None:
    """A read sent just as the connection resets: read again on a new connection, and answered."""
    b = pool.box(target_of(fleet, box))
    await b.stat(CONFIG)
    box.fault(FaultKind.CONNECTION_RESET)  # no pause: the request goes out on the dying connection
    assert await b.read_file(CONFIG) == box.path(CONFIG).read_bytes()
    assert box.counters.ssh_connections == 2


async def test_write_lost_mid_flight_fails_named_and_is_not_replayed(
    fleet: DemoFleet, box: DemoBox, pool: SshPool
) -> None:
    """The connection drops during an upload: ConnectError naming box and file; no second try."""
    b = pool.box(target_of(fleet, box))
    old = await b.read_file(CONFIG)
    box.fault(FaultKind.DROP_TRANSFER)
    with pytest.raises(ConnectError) as err:
        await b.write_atomic(CONFIG, b"model: x\n" * 1000)
    assert err.value.box == box.name
    assert err.value.operation == f"write {CONFIG}"
    assert "not replayed" in str(err.value)
    assert box.counters.ssh_connections == 1  # no reconnect, so no second upload
    assert box.path(CONFIG).read_bytes() == old
    box.clear(FaultKind.DROP_TRANSFER)
    assert await b.read_file(CONFIG) == old  # the next operation reconnects
    assert box.counters.ssh_connections == 2


async def test_command_lost_mid_flight_fails_and_is_not_replayed(
    fleet: DemoFleet, box: DemoBox, pool: SshPool
) -> None:
    """A reload running when the connection resets fails, named; it is not run a second time."""
    b = pool.box(target_of(fleet, box))
    await b.stat(CONFIG)
    box.fault(FaultKind.SLOW_RELOAD, 0.5)
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, box.fault, FaultKind.CONNECTION_RESET)
    with pytest.raises(ConnectError) as err:
        await b.run(["agentctl", "reload"], timeout=5)
    assert err.value.operation == "run 'agentctl reload'"
    assert "connection lost while it ran" in str(err.value)
    await asyncio.sleep(0.6)
    assert box.counters.reloads == 0
    assert box.counters.commands_abandoned == 1
    assert box.counters.ssh_connections == 1


async def test_read_only_command_lost_mid_flight_runs_again(
    fleet: DemoFleet, box: DemoBox, pool: SshPool
) -> None:
    """run(read_only=True), as for a health command, runs once more after a reset, and answers."""
    b = pool.box(target_of(fleet, box))
    await b.stat(CONFIG)
    box.fault(FaultKind.SLOW_RELOAD, 0.4)  # stands in for a slow health command here
    asyncio.get_running_loop().call_later(0.15, box.fault, FaultKind.CONNECTION_RESET)
    assert (await b.run(["agentctl", "reload"], timeout=5, read_only=True)).ok
    assert box.counters.commands_abandoned == 1 and box.counters.reloads == 1
    assert box.counters.ssh_connections == 2
