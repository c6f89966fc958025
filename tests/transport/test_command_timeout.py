"""A reload that outlives its command timeout: a clear, named error, and the command stopped.

A demo box with the `slow-reload` fault takes its time over `agentctl reload`;
the per-agent `command_timeout_s` (else fleet.yaml's) is the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.config.repo import load_repo
from reconciler.demo import DemoFleet, FaultKind
from reconciler.engine.boxops import ActivationFailed, BoxHandle, activate
from reconciler.model.agent import Agent, Commands
from reconciler.model.box import Health
from reconciler.plan.model import Activation
from reconciler.repo import read_work_tree
from reconciler.rollout.events import ApplyStep
from reconciler.testing.sshserver import ClientKey, LoopbackSshServer
from reconciler.transport.base import OperationTimeout
from reconciler.transport.link import FleetLink
from reconciler.transport.live import Box, read_box
from reconciler.transport.ssh import SshPool, SshTarget


@pytest.fixture
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoFleet]:
    async with DemoFleet.start(tmp_path_factory.mktemp("demo"), agents=1) as f:
        yield f


def agent_of(fleet: DemoFleet, **override: object) -> tuple[Agent, FleetLink]:
    """The demo repo's agent (with overrides, e.g. command_timeout_s) and a link for its fleet."""
    repo = load_repo(read_work_tree(fleet.repo))
    agent = repo.agent(fleet.names[0]).agent.model_copy(update=override)
    return agent, FleetLink(repo.fleet.connection, fleet.repo)


async def no_health(url: str) -> Health:
    raise AssertionError("activation does not read health")


async def test_reload_beyond_the_timeout_fails_naming_box_command_and_limit(
    fleet: DemoFleet,
) -> None:
    """slow-reload 1.5 s against a 0.3 s limit: OperationTimeout at once; the reload never acts."""
    agent, link = agent_of(fleet)
    box = fleet.box(agent.name)
    box.fault(FaultKind.SLOW_RELOAD, 1.5)
    started = time.monotonic()
    async with link:
        with pytest.raises(OperationTimeout) as err:
            await link.ssh(agent).run(["agentctl", "reload"], timeout=0.3)
        took = time.monotonic() - started
        assert took < 1.2
        text = str(err.value)
        assert text.startswith(f"{agent.name}: run 'agentctl reload': ")
        assert "did not finish within 0.3s" in text
        await asyncio.sleep(1.5)  # past the slow reload: it was abandoned with its session
    assert box.counters.reloads == 0
    assert box.counters.commands_abandoned == 1


async def test_per_agent_command_timeout_is_the_reload_limit(fleet: DemoFleet) -> None:
    """command_timeout_s on the agent wins over fleet.yaml's; a rollout's reload honours it."""
    agent, link = agent_of(fleet, command_timeout_s=0.4)
    default, _ = agent_of(fleet)
    assert link.command_timeout(default) == link.timeout == 30.0
    assert link.command_timeout(agent) == 0.4
    box = fleet.box(agent.name)
    box.fault(FaultKind.SLOW_RELOAD, 1.0)
    async with link:
        handle = BoxHandle(
            agent, link.ssh(agent), no_health, command_timeout=link.command_timeout(agent)
        )
        with pytest.raises(ActivationFailed) as err:
            await activate(handle, Activation.RELOAD)
        assert "agentctl reload" in str(err.value) and "within 0.4s" in str(err.value)
        assert err.value.step is ApplyStep.RELOAD  # a step after the write: restored
        box.fault(FaultKind.SLOW_RELOAD, 0.2)  # within the limit: waits, then reloads
        await activate(handle, Activation.RELOAD)
    assert box.counters.reloads == 1


async def test_live_read_gives_the_health_command_the_agents_own_timeout(
    ssh_server: LoopbackSshServer,
    client_key: ClientKey,
    known_hosts: Path,
    pool: SshPool,
    box_dir: Path,
) -> None:
    """A health command (no health_url) slower than the agent's 0.3 s: an error, not a 30 s wait."""
    agent = Agent(
        name="box-1", tier="fast", shard="s1", host="127.0.0.1", port=ssh_server.port,
        user="agent", key=str(client_key.path), known_hosts=str(known_hosts),
        config_path=str(box_dir / "agent.yaml"), commands=Commands(health=["sleep", "3"]),
        command_timeout_s=0.3,
    )  # fmt: skip

    async def connect(a: Agent) -> Box:
        return pool.box(SshTarget.of(a, box_dir))

    started = time.monotonic()
    live = await read_box(agent, connect, no_health, fleet_id="f", fleet_key=None, timeout=30)
    assert time.monotonic() - started < 2
    assert live.health is None
    assert "run 'sleep 3': did not finish within 0.3s" in (live.health_error or "")
