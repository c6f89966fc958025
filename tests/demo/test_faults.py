"""Every fault kind has its effect, seen through real SSH, SFTP and HTTP clients."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import asyncssh
import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.demo import DemoFleet, FaultKind
from reconciler.demo.http import read_token
from reconciler.model.box import parse_health

from .helpers import per_task, push_and_reload, rendered, scrape, write_atomic

FAST = "us-east-fast-001"
CONFIG = "/etc/agent/config.yaml"


def _auth(fleet: DemoFleet) -> dict[str, str]:
    """The control token `reconcile demo fault` sends (DIR/control.token)."""
    return {"Authorization": f"Bearer {read_token(fleet.dir.root)}"}


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def _window(fleet: DemoFleet, seconds: float = 300) -> tuple[dict[str, float], ...]:
    box = fleet.box(FAST)
    before = await scrape(box.metrics_url)
    box.work(seconds)
    return before, await scrape(box.metrics_url)


def test_every_fault_kind_has_a_test_here() -> None:
    """This module uses every FaultKind (a new kind needs a test)."""
    tests = Path(__file__).read_text().split("def test_every", 1)[1].split("\nasync def ", 1)[1]
    assert [k for k in FaultKind if f"FaultKind.{k.name}" not in tests] == []


async def test_crash_on_reload_takes_the_agent_down_until_restart(demo_fleet: DemoFleet) -> None:
    """The next reload crashes the agent: reload exits non-zero, health 503 alive=false."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.CRASH_ON_RELOAD)
    data = rendered(demo_fleet.repo, demo_fleet.head_commit, FAST)
    done = await push_and_reload(demo_fleet, FAST, data)
    assert done.exit_status != 0
    r = await _get(box.health_url)
    assert r.status_code == 503
    assert parse_health(r.content).alive is False
    assert (await _get(box.metrics_url)).status_code == 503
    box.work(60)
    assert parse_health((await _get(box.health_url)).content).tasks_processed == 0
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        assert (await conn.run("agentctl reload", check=False)).exit_status != 0
        assert (await conn.run("agentctl restart", check=False)).exit_status == 0
    health = parse_health((await _get(box.health_url)).content)
    assert health.alive
    assert health.loaded_sha256 == hashlib.sha256(data).hexdigest()
    assert FaultKind.CRASH_ON_RELOAD.value not in box.faults.as_dict()  # fires once


async def test_flap_crashes_the_agent_after_a_successful_reload(demo_fleet: DemoFleet) -> None:
    """With flap T, the agent dies T seconds after each reload (T=0: at its next tick)."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.FLAP, 0)
    data = rendered(demo_fleet.repo, demo_fleet.head_commit, FAST)
    done = await push_and_reload(demo_fleet, FAST, data)
    assert done.exit_status == 0
    box.work(0)
    health = parse_health((await _get(box.health_url)).content)
    assert not health.alive


async def test_stall_keeps_the_agent_alive_with_a_growing_queue(demo_fleet: DemoFleet) -> None:
    """Stalled: alive, heartbeat fresh, queue filling, zero tasks processed."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.STALL)
    before = parse_health((await _get(box.health_url)).content)
    box.work(60)
    after = parse_health((await _get(box.health_url)).content)
    assert after.alive
    assert after.tasks_processed == before.tasks_processed
    assert after.queue_depth > before.queue_depth
    box.clear(FaultKind.STALL)
    box.work(60)
    assert parse_health((await _get(box.health_url)).content).tasks_processed > 0


async def test_error_rate_fails_that_share_of_tasks(demo_fleet: DemoFleet) -> None:
    """error-rate 0.4 on top of the base 1%: about 41% of tasks fail."""
    demo_fleet.box(FAST).fault(FaultKind.ERROR_RATE, 0.4)
    assert 0.3 < per_task(*await _window(demo_fleet, 600), "task_errors_total") < 0.52


async def test_latency_adds_seconds_to_every_task(demo_fleet: DemoFleet) -> None:
    """latency 5: the mean task latency rises by about five seconds."""
    base = per_task(*await _window(demo_fleet), "task_latency_seconds_sum")
    demo_fleet.box(FAST).fault(FaultKind.LATENCY, 5)
    slow = per_task(*await _window(demo_fleet), "task_latency_seconds_sum")
    assert 4.5 < slow - base < 5.5


async def test_tokens_multiplies_output_tokens(demo_fleet: DemoFleet) -> None:
    """tokens 6: six times the output tokens per task, errors flat."""
    base = await _window(demo_fleet, 600)
    demo_fleet.box(FAST).fault(FaultKind.TOKENS, 6)
    more = await _window(demo_fleet, 600)
    ratio = per_task(*more, "tokens_out_total") / per_task(*base, "tokens_out_total")
    assert 5.4 < ratio < 6.6
    assert per_task(*more, "task_errors_total") < 0.05


async def test_ssh_hang_accepts_and_never_answers(demo_fleet: DemoFleet) -> None:
    """ssh-hang: the TCP connect succeeds, the SSH handshake never completes."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.SSH_HANG)
    reader, writer = await asyncio.open_connection("127.0.0.1", box.ssh_port)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readline(), 0.5)  # no SSH banner
    writer.close()
    with pytest.raises((TimeoutError, asyncssh.Error)):
        await asyncssh.connect(**demo_fleet.ssh_options(FAST), login_timeout=1, connect_timeout=1)
    box.clear(FaultKind.SSH_HANG)
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        assert (await conn.run("agentctl health", check=False)).exit_status == 0


async def test_ssh_refused_closes_the_port_until_cleared(demo_fleet: DemoFleet) -> None:
    """ssh-refused: connection refused; cleared, the same port answers again."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.SSH_REFUSED)
    with pytest.raises(ConnectionRefusedError):
        await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    box.clear(FaultKind.SSH_REFUSED)
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        assert (await conn.run("agentctl health", check=False)).exit_status == 0


async def test_host_key_changed_fails_the_known_hosts_check(demo_fleet: DemoFleet) -> None:
    """host-key-changed: the box presents a key known_hosts does not hold."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.HOST_KEY_CHANGED)
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    box.clear()
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)):
        pass


async def test_disk_full_fails_writes_and_leaves_the_old_file(demo_fleet: DemoFleet) -> None:
    """disk-full: writes and mkdir fail with an error; the config on the box is unchanged."""
    box = demo_fleet.box(FAST)
    old = box.path(CONFIG).read_bytes()
    box.fault(FaultKind.DISK_FULL)
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        with pytest.raises(asyncssh.SFTPError):
            await write_atomic(sftp, CONFIG, b"model: x\n" * 100)
        with pytest.raises(asyncssh.SFTPError):
            await sftp.mkdir("/etc/agent/config.yaml.lease")
    assert box.path(CONFIG).read_bytes() == old


async def test_dropped_transfer_leaves_the_old_file_intact(demo_fleet: DemoFleet) -> None:
    """drop-transfer: the connection dies mid-upload; the config and loaded sha are unchanged."""
    box = demo_fleet.box(FAST)
    old, old_sha = box.path(CONFIG).read_bytes(), box.agent.loaded_sha
    box.fault(FaultKind.DROP_TRANSFER)
    with pytest.raises((asyncssh.Error, ConnectionError)):
        await push_and_reload(demo_fleet, FAST, b"model: claude-haiku-4-5\n" * 1000)
    assert box.path(CONFIG).read_bytes() == old
    assert box.agent.loaded_sha == old_sha
    assert box.counters.reloads == 0


async def test_clock_skew_ages_the_heartbeat(demo_fleet: DemoFleet) -> None:
    """clock-skew 120: the box reports a heartbeat at least two minutes old."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.CLOCK_SKEW, 120)
    health = parse_health((await _get(box.health_url)).content)
    assert health.alive
    assert health.heartbeat_age_s >= 120


async def _health_ok(conn: asyncssh.SSHClientConnection) -> bool:
    return (await conn.run("agentctl health", check=False)).exit_status == 0


async def test_connection_reset_drops_every_open_connection_once(demo_fleet: DemoFleet) -> None:
    """connection-reset: all open SSH connections dies at once, the fault is gone, new ones work."""
    box = demo_fleet.box(FAST)
    first = await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    second = await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    await first.start_sftp_client()
    box.fault(FaultKind.CONNECTION_RESET)
    await asyncio.wait_for(asyncio.gather(first.wait_closed(), second.wait_closed()), 2)
    assert box.counters.connection_resets == 2
    assert box.faults.as_dict() == {}  # one-shot: it acted and cleared itself
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        assert await _health_ok(conn)
    assert box.counters.connection_resets == 2


async def test_slow_reload_takes_its_time_then_acts(demo_fleet: DemoFleet) -> None:
    """slow-reload S: reload and restart wait S seconds, then act and exit 0; health is quick."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.SLOW_RELOAD)
    assert box.faults.as_dict() == {"slow-reload": 10.0}  # the default
    box.fault(FaultKind.SLOW_RELOAD, 0.4)
    loop = asyncio.get_running_loop()
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        for command in ("agentctl reload", "agentctl restart"):
            started = loop.time()
            assert (await conn.run(command, check=False)).exit_status == 0
            assert loop.time() - started >= 0.4
        started = loop.time()
        assert await _health_ok(conn)
        assert loop.time() - started < 0.3
    assert (box.counters.reloads, box.counters.restarts) == (1, 1)


async def test_slow_reload_abandoned_by_its_client_never_acts(demo_fleet: DemoFleet) -> None:
    """A client that gives up on a slow reload and closes the session: the reload never happens."""
    box = demo_fleet.box(FAST)
    box.fault(FaultKind.SLOW_RELOAD, 0.5)
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        process = await conn.create_process("agentctl reload")
        with pytest.raises(asyncssh.TimeoutError):
            await process.wait(timeout=0.1)
        process.close()
        await asyncio.sleep(0.6)
    assert box.counters.reloads == 0
    assert box.counters.commands_abandoned == 1


async def test_host_key_changed_then_connection_reset(demo_fleet: DemoFleet) -> None:
    """They combine: an open connection lives until the reset; the reconnect sees a new key."""
    box = demo_fleet.box(FAST)
    conn = await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    box.fault(FaultKind.HOST_KEY_CHANGED)
    assert await _health_ok(conn)  # the key was checked at this connection's handshake
    box.fault(FaultKind.CONNECTION_RESET)
    await asyncio.wait_for(conn.wait_closed(), 2)
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    assert box.faults.as_dict() == {"host-key-changed": None}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


async def test_new_faults_through_the_control_endpoint_and_the_cli(demo_fleet: DemoFleet) -> None:
    """`reconcile demo fault` and POST /_demo/fault set slow-reload and fire connection-reset."""
    box, root = demo_fleet.box(FAST), str(demo_fleet.dir.root)
    conn = await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    code, output = await asyncio.to_thread(
        _cli, "demo", "fault", "--dir", root, FAST, "slow-reload", "3"
    )
    assert code == 0, output
    assert "slow-reload=3" in output
    assert box.faults.value(FaultKind.SLOW_RELOAD) == 3
    code, output = await asyncio.to_thread(
        _cli, "demo", "fault", "--dir", root, FAST, "connection-reset"
    )
    assert code == 0, output
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert box.counters.connection_resets == 1
    conn = await asyncssh.connect(**demo_fleet.ssh_options(FAST))
    async with httpx.AsyncClient(base_url=box.base_url, headers=_auth(demo_fleet)) as client:
        r = await client.post("/_demo/fault", json={"kind": "connection-reset"})
        assert r.status_code == 200 and r.json() == {"slow-reload": 3.0}
        await asyncio.wait_for(conn.wait_closed(), 2)
        r = await client.post("/_demo/fault", json={"kind": "slow-reload"})
        assert r.json() == {"slow-reload": 10.0}
        r = await client.post("/_demo/fault", json={"kind": "connection-reset", "value": 1})
        assert r.status_code == 400 and "takes no value" in r.json()["error"]
    assert box.counters.connection_resets == 2
    help_code, help_text = await asyncio.to_thread(_cli, "demo", "fault", "--help")
    assert help_code == 0 and "connection-reset" in help_text and "slow-reload" in help_text
