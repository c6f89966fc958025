"""The simulated agent behind real SSH and HTTP: reloads, restarts, and config-driven metrics."""

from __future__ import annotations

import hashlib
import shlex
from datetime import UTC, datetime

import asyncssh
import httpx
from ruamel.yaml import YAML

from reconciler.config.repo import load_repo
from reconciler.demo import DemoBox, DemoFleet
from reconciler.model.box import BoxPaths, parse_health, parse_stamp
from reconciler.render.canonical import render_payload
from reconciler.render.stamp import make_stamp
from reconciler.repo import read_revision

from .helpers import per_task, push_and_reload, rendered, scrape, write_atomic

FAST = "us-east-fast-001"


async def _health(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def _window(box: DemoBox, seconds: float = 600) -> tuple[dict[str, float], dict[str, float]]:
    """Scrapes before and after `seconds` of work."""
    before = await scrape(box.metrics_url)
    box.work(seconds)
    return before, await scrape(box.metrics_url)


async def test_applying_the_head_change_raises_cost_per_task(demo_fleet: DemoFleet) -> None:
    """Writing the head commit's bytes and reloading moves /metrics the way the change says."""
    box = demo_fleet.box(FAST)
    old = await _window(box)
    data = rendered(demo_fleet.repo, demo_fleet.head_commit, FAST)
    assert data != box.path("/etc/agent/config.yaml").read_bytes()
    done = await push_and_reload(demo_fleet, FAST, data)
    assert done.exit_status == 0, done.stderr
    new = await _window(box)
    assert per_task(*new, "cost_usd_total") > 1.15 * per_task(*old, "cost_usd_total")
    health = parse_health((await _health(box.health_url)).content)
    assert health.loaded_sha256 == hashlib.sha256(data).hexdigest()
    assert health.loaded_revision is None  # the stamp still names the first commit
    assert box.counters.reloads == 1
    assert box.counters.config_bytes_received == len(data)


async def test_higher_max_tokens_raises_output_tokens_per_task(demo_fleet: DemoFleet) -> None:
    """Four times the max_tokens gives about four times the output tokens per task."""
    box = demo_fleet.box(FAST)
    payload = load_repo(read_revision(demo_fleet.repo, demo_fleet.first_commit).files)
    config = dict(payload.agent(FAST).agent.config)
    old = await _window(box)
    config["max_tokens"] = config["max_tokens"] * 4
    assert (await push_and_reload(demo_fleet, FAST, render_payload(config))).exit_status == 0
    new = await _window(box)
    ratio = per_task(*new, "tokens_out_total") / per_task(*old, "tokens_out_total")
    assert 3.5 < ratio < 4.5


async def test_a_config_that_does_not_parse_fails_the_reload(demo_fleet: DemoFleet) -> None:
    """reload exits non-zero and the agent keeps running its old config."""
    box = demo_fleet.box(FAST)
    old_sha = box.agent.loaded_sha
    done = await push_and_reload(demo_fleet, FAST, b"model: [unclosed\n")
    assert done.exit_status != 0
    assert "reload failed" in str(done.stderr)
    health = parse_health((await _health(box.health_url)).content)
    assert health.alive
    assert health.loaded_sha256 == old_sha
    assert health.loaded_revision == demo_fleet.first_commit
    assert box.counters.reload_failures == 1


async def test_a_wrong_api_key_fails_every_task_after_reload(demo_fleet: DemoFleet) -> None:
    """Reload re-reads the secrets file: a wrong key makes every task fail."""
    box = demo_fleet.box(FAST)
    secrets = str(BoxPaths.of("/etc/agent/config.yaml").secrets)
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        await write_atomic(
            sftp, secrets, b'{"anthropic_api_key": "sk-live-wrong", "kb_token": "x"}\n'
        )
        assert (await conn.run("agentctl reload", check=False)).exit_status == 0
    assert per_task(*await _window(box, 120), "task_errors_total") == 1.0


async def test_loaded_revision_follows_a_stamp_matching_the_loaded_config(
    demo_fleet: DemoFleet,
) -> None:
    """Once the stamp names the loaded sha, health reports the stamp's revision."""
    box = demo_fleet.box(FAST)
    data = rendered(demo_fleet.repo, demo_fleet.head_commit, FAST)
    assert (await push_and_reload(demo_fleet, FAST, data)).exit_status == 0
    paths = BoxPaths.of("/etc/agent/config.yaml")
    old = parse_stamp(box.path(paths.stamp).read_bytes())
    stamp = make_stamp(
        fleet_id=old.fleet_id,
        agent=FAST,
        revision=demo_fleet.head_commit,
        config_sha256=hashlib.sha256(data).hexdigest(),
        rollout_id="r-1",
        outcome="applied",
        now=datetime.now(UTC),
        previous=old,
    )
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        await write_atomic(sftp, str(paths.stamp), stamp.to_bytes())
    health = parse_health((await _health(box.health_url)).content)
    assert health.loaded_revision == demo_fleet.head_commit


async def test_restart_starts_a_fresh_process(demo_fleet: DemoFleet) -> None:
    """restart: counters start from zero, uptime anew, the config read again."""
    box = demo_fleet.box(FAST)
    box.work(60)
    assert (await scrape(box.metrics_url))["tasks_total"] > 0
    config = YAML(typ="safe").load(box.path("/etc/agent/config.yaml").read_bytes())
    config["max_tokens"] = 100
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        await write_atomic(sftp, "/etc/agent/config.yaml", render_payload(config))
        done = await conn.run(shlex.join(["agentctl", "restart"]), check=False)
    assert done.exit_status == 0
    assert (await scrape(box.metrics_url))["tasks_total"] == 0
    assert box.agent.behaviour is not None
    assert box.agent.behaviour.max_tokens == 100
    assert box.counters.restarts == 1
    assert box.counters.reloads == 0
