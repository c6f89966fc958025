"""The demo provider's valid keys, and the box contract's directions in the demo agent.

Outbound: the agent sends the staged `next` at once; a task whose key the provider
does not accept fails with reason "auth" (/_demo/counters auth_failures, and
task_errors_total{reason="auth"} in /metrics, still counted in task_errors_total).
Inbound: the agent accepts a caller's token that is `current` or `next`.
"""

from __future__ import annotations

import json
import secrets
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import asyncssh
import httpx
from prometheus_client.parser import text_string_to_metric_families

from reconciler.demo import DemoFleet
from reconciler.demo.provider import Provider, issue, keys_file, revoke
from reconciler.model.box import BoxPaths
from reconciler.secrets.secretsfile import Slot, parse_secrets_file, render_secrets_file

from .helpers import write_atomic

FAST = "us-east-fast-001"
SECRETS = str(BoxPaths.of("/etc/agent/config.yaml").secrets)


async def _metrics(url: str) -> dict[str, float]:
    """task_errors_total by reason, and tasks_total."""
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
    r.raise_for_status()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == "task_errors_total":
                out[f"errors:{s.labels['reason']}"] = s.value
            elif s.name == "tasks_total":
                out["tasks"] = s.value
    return out


def _slots(fleet: DemoFleet, agent: str) -> dict[str, Slot]:
    return parse_secrets_file(fleet.box(agent).path(SECRETS).read_bytes())


async def _stage(fleet: DemoFleet, agent: str, slots: dict[str, Slot]) -> None:
    """Write the secrets file over SFTP and reload the agent, as a rotation's stage does."""
    async with asyncssh.connect(**fleet.ssh_options(agent)) as conn:
        async with conn.start_sftp_client() as sftp:
            await write_atomic(sftp, SECRETS, render_secrets_file(slots))
        done = await conn.run(shlex.join(["agentctl", "reload"]), check=False)
        assert done.exit_status == 0, done.stderr


def test_issue_and_revoke_keep_digests_only_in_a_0600_file(tmp_path: Path) -> None:
    key, other = "sk-demo-" + secrets.token_hex(8), "sk-demo-" + secrets.token_hex(8)
    ticks = [0.0]
    p = Provider(keys_file(tmp_path), clock=lambda: ticks[0])
    assert not p.accepts(key)  # no file: no key is valid
    issue(tmp_path, key, other)
    path = keys_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in path.read_text() and other not in path.read_text()
    ticks[0] += 1.0
    assert p.accepts(key) and p.accepts(other)
    revoke(tmp_path, key)
    ticks[0] += 1.0
    assert not p.accepts(key) and p.accepts(other)
    doc = json.loads(path.read_text())
    assert len(doc["valid"]) == 1 and len(doc["revoked"]) == 1


def test_another_process_sees_a_revocation_and_the_key_stays_off_argv(tmp_path: Path) -> None:
    """`python -m reconciler.demo.provider revoke DIR` with the key on stdin."""
    key = "sk-demo-" + secrets.token_hex(8)
    issue(tmp_path, key)
    ticks = [0.0]
    p = Provider(keys_file(tmp_path), clock=lambda: ticks[0])
    assert p.accepts(key)
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.demo.provider", "revoke", str(tmp_path)],
        input=key + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout + done.stderr
    assert p.accepts(key)  # cached until the next check ...
    ticks[0] += 1.0
    assert not p.accepts(key)  # ... which re-reads the changed file


async def test_the_demos_own_key_is_valid_and_no_task_fails_on_auth(
    demo_fleet: DemoFleet,
) -> None:
    box = demo_fleet.box(FAST)
    box.work(120)
    m = await _metrics(box.metrics_url)
    assert m["tasks"] > 100 and m["errors:auth"] == 0.0
    assert box.counters.auth_failures == 0
    assert box.state()["error_reason"] is None


async def test_a_revoked_staged_next_fails_on_auth_and_a_good_next_does_not(
    demo_fleet: DemoFleet,
) -> None:
    """A box whose staged `next` is revoked at the provider: auth_failures > 0 and
    task_errors_total{reason="auth"} in /metrics; a box with an issued `next`: zero."""
    bad_box, good_box = "us-east-fast-001", "eu-west-fast-001"
    bad, good = "sk-demo-" + secrets.token_hex(16), "sk-demo-" + secrets.token_hex(16)
    issue(demo_fleet.dir.root, bad, good)
    for agent, value in ((bad_box, bad), (good_box, good)):
        slots = _slots(demo_fleet, agent)
        slots["anthropic_api_key"] = Slot(slots["anthropic_api_key"].current, value)
        await _stage(demo_fleet, agent, slots)
    revoke(demo_fleet.dir.root, bad)
    for agent in (bad_box, good_box):
        demo_fleet.box(agent).work(120)

    box = demo_fleet.box(bad_box)
    m = await _metrics(box.metrics_url)
    assert m["errors:auth"] == m["tasks"] > 100  # the agent sends `next`, not `current`
    assert box.counters.auth_failures == m["errors:auth"]
    assert box.state()["error_reason"] == "API key rejected (401)"
    async with httpx.AsyncClient() as client:
        counters = (await client.get(f"{box.base_url}/_demo/counters")).json()
    assert counters["auth_failures"] == box.counters.auth_failures

    ok = demo_fleet.box(good_box)
    m = await _metrics(ok.metrics_url)
    assert m["tasks"] > 100 and m["errors:auth"] == 0.0
    assert ok.counters.auth_failures == 0

    # put back: `next` removed, `current` (still valid) in use again
    slots = _slots(demo_fleet, bad_box)
    await _stage(demo_fleet, bad_box, {n: Slot(s.current) for n, s in slots.items()})
    before = (await _metrics(box.metrics_url))["errors:auth"]
    box.work(60)
    assert (await _metrics(box.metrics_url))["errors:auth"] == before


async def test_a_missing_secrets_file_still_fails_every_task(demo_fleet: DemoFleet) -> None:
    """No secrets file: no API key; every task fails, counted as auth."""
    box = demo_fleet.box(FAST)
    box.path(SECRETS).unlink()
    async with asyncssh.connect(**demo_fleet.ssh_options(FAST)) as conn:
        assert (await conn.run("agentctl reload", check=False)).exit_status == 0
    box.work(60)
    m = await _metrics(box.metrics_url)
    assert m["tasks"] > 50 and m["errors:auth"] == m["tasks"]
    assert box.state()["error_reason"] == "no API key"


async def test_an_inbound_token_is_accepted_as_current_or_next(demo_fleet: DemoFleet) -> None:
    """caller_token: {secret: agent_token}: current and the staged next pass, others 401."""
    box = demo_fleet.box(FAST)
    config = box.path("/etc/agent/config.yaml")
    config.write_text(
        config.read_text() + "caller_token: {secret: agent_token}\n", encoding="utf-8"
    )
    old, new = secrets.token_hex(16), secrets.token_hex(16)
    slots = _slots(demo_fleet, FAST)
    slots["agent_token"] = Slot(old, new)
    await _stage(demo_fleet, FAST, slots)

    async def call(token: str) -> int:
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"{box.base_url}/v1/caller", headers={"Authorization": f"Bearer {token}"}
            )
        assert token not in r.text
        return r.status_code

    assert (await call(old), await call(new), await call("nope")) == (200, 200, 401)
    slots["agent_token"] = Slot(new)  # promoted and retired: the old token is refused
    await _stage(demo_fleet, FAST, slots)
    assert (await call(old), await call(new)) == (401, 200)
    assert box.counters.caller_refusals == 2
