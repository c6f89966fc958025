"""`apply` against a real OpenSSH sshd with real agent processes behind it (realagent.py).

Two agents share the sshd (two config paths under its box root), each a real
process serving health over HTTP; their reload is a shell script sshd runs
(SIGHUP, wait for the agent to count it), their restart a script that starts
the agent again. A good commit rolls out (the agents really reload); a commit
that crashes the wave-2 agent on reload is rolled back on both boxes.

The fleet.yaml here declares no metric gates: the real agent serves health, not
Prometheus metrics, so the watchdog is its gate (nothing is switched off; the demo
journeys run the metric gates).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.config.repo import load_repo
from reconciler.config.validate import secret_refs
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import RunResult
from reconciler.engine.session import Request, execute, prepare
from reconciler.model.box import BoxPaths, parse_stamp
from reconciler.render.canonical import render_payload, sha256_hex
from reconciler.render.stamp import make_stamp
from reconciler.repo import read_revision
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import Recorder
from reconciler.rollout.watchdog import Limits
from reconciler.secrets.values import render_secrets
from reconciler.secretstore import resolve_values
from reconciler.testing.fleetrepo import commit_all
from reconciler.testing.openssh import OpenSshBox
from reconciler.testing.realagent import RealAgent

NAMES = ("lab-fast-001", "lab-fast-002")  # same shard and tier: waves by name, 001 first
ENV = {"RECONCILER_SECRET_API_KEY": "sk-lab-not-shown"}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["model", "prompt", "api_key"],
    "properties": {
        "model": {"type": "string", "x-cost-impacting": True},
        "prompt": {"type": "string"},
        "api_key": {"type": "object"},
        "crash_on_reload": {"type": "boolean"},
    },
}


def _git(repo: Path, *args: str) -> str:
    g = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    return subprocess.run(
        [*g, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def _config_path(box: OpenSshBox, name: str) -> Path:
    return box.root / "etc" / name / "config.yaml"


def _write_repo(repo: Path, box: OpenSshBox, agents: dict[str, RealAgent]) -> None:
    """A fleet repo whose two agents live on the sshd box, run by real agent processes."""
    entries = "".join(
        f"  - name: {name}\n    tier: fast\n    host: 127.0.0.1\n    port: {box.port}\n"
        f"    config_path: {_config_path(box, name)}\n    health_url: {a.health_url}\n"
        f"    commands:\n      reload: [sh, {a.reload_script}]\n"
        f"      restart: [sh, {a.restart_script}]\n"
        for name, a in agents.items()
    )
    files = {
        "fleet.yaml": (
            "fleet_id: lab\nconnection:\n"
            f"  user: {box.user}\n  key: {box.client_key}\n  known_hosts: {box.known_hosts}\n"
            "  connect_timeout_s: 5\n  command_timeout_s: 15\n  connect_retries: 0\n"
            f"  allowed_paths: [{box.root / 'etc'}]\n"
            "rollout:\n  waves: [1, 100%]\n  soak_s: 0.5\n  failure_budget: 0\n"
            "  verify_timeout_s: 10\n"
        ),
        "agents/_base.yaml": (
            "config:\n  model: claude-haiku-4-5\n  prompt: hello\n  api_key: {secret: api_key}\n"
        ),
        "agents/tier-fast.yaml": "description: fast\n",
        "secrets/index.yaml": "secrets:\n  - name: api_key\n",
        "shards/lab.yaml": "agents:\n" + entries,
        "schemas/agent.schema.json": json.dumps(SCHEMA, indent=2) + "\n",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "lab fleet")


def _seed(repo: Path) -> None:
    """Put the head commit on every box as an apply would: config, history, secrets, stamp."""
    rev = read_revision(repo, "HEAD")
    loaded = load_repo(rev.files)
    for name, effective in loaded.agents.items():
        agent = effective.agent
        paths = BoxPaths.of(agent.config_path, agent.secrets_path)
        data = render_payload(agent.config)
        refs = {ref for _, ref in secret_refs(agent.config)}
        secrets = render_secrets(resolve_values(refs, loaded.fleet, repo, env=ENV))
        stamp = make_stamp(
            fleet_id="lab", agent=name, revision=rev.sha, config_sha256=sha256_hex(data),
            rollout_id="seed", outcome="applied", now=datetime.now(UTC), keep=5,
        )  # fmt: skip
        Path(paths.history_file(sha256_hex(data))).parent.mkdir(parents=True, exist_ok=True)
        Path(paths.config).write_bytes(data)
        Path(paths.history_file(sha256_hex(data))).write_bytes(data)
        Path(paths.secrets).write_bytes(secrets)
        Path(paths.secrets).chmod(0o600)
        Path(paths.stamp).write_bytes(stamp.to_bytes())


@pytest.fixture
def lab(openssh_box: OpenSshBox, tmp_path: Path) -> Iterator[tuple[Path, dict[str, RealAgent]]]:
    """The repo (seeded on the box at its first commit) and the two running real agents."""
    agents = {
        n: RealAgent(openssh_box.root / "run" / n, _config_path(openssh_box, n)).install()
        for n in NAMES
    }
    repo = tmp_path / "fleet"
    repo.mkdir()
    try:
        _write_repo(repo, openssh_box, agents)
        _seed(repo)
        for a in agents.values():
            a.start()
        yield repo, agents
    finally:
        for a in agents.values():
            a.stop()


async def _apply(repo: Path) -> tuple[RunResult, Recorder]:
    req = Request(
        repo=repo, env=ENV, watchdog=Limits(max_heartbeat_age_s=5.0, stall_window_s=0.6),
        soak_interval_s=0.2,
    )  # fmt: skip
    p = await prepare(req)
    rec = Recorder()
    try:
        return await execute(p, clock=SystemClock(), reporter=rec), rec
    finally:
        await p.link.close()


async def _truth(box: OpenSshBox, name: str, agent: RealAgent) -> tuple[str, str, str, dict]:
    """(file sha, stamp sha, the agent's loaded sha, the stamp as JSON) of one box."""
    paths = BoxPaths.of(str(_config_path(box, name)))
    stamp = parse_stamp(Path(paths.stamp).read_bytes())
    health = await asyncio.to_thread(agent.health)
    file_sha = hashlib.sha256(Path(paths.config).read_bytes()).hexdigest()
    return file_sha, stamp.config_sha256, health["loaded_sha256"], stamp.model_dump(mode="json")


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_apply_and_rollback_on_openssh_with_real_agent_processes(
    openssh_box: OpenSshBox, lab: tuple[Path, dict[str, RealAgent]]
) -> None:
    """A change reaches both real agents by SIGHUP; a crash on reload rolls both back."""
    repo, agents = lab
    pids = {n: a.pid() for n, a in agents.items()}
    first = _git(repo, "rev-parse", "HEAD")

    _edit(repo, "agents/_base.yaml", "prompt: hello", "prompt: hello, world")
    good = commit_all(repo, "a friendlier prompt")
    result, rec = await _apply(repo)
    assert result.outcome is Outcome.DONE, rec.notes
    assert sorted(f["agent"] for k, f in rec.notes if k == "box.applied") == sorted(NAMES)
    good_shas = {}
    for name, agent in agents.items():
        file_sha, stamp_sha, loaded, stamp = await _truth(openssh_box, name, agent)
        assert file_sha == stamp_sha == loaded
        assert stamp["revision"] == good and stamp["outcome"] == "applied"
        health = await asyncio.to_thread(agent.health)
        assert health["reloads"] == 1  # one SIGHUP, delivered by the reload sshd ran
        assert health["pid"] == pids[name]  # reloaded in place, not restarted
        good_shas[name] = file_sha
    assert first != good

    _edit(repo, "agents/_base.yaml", "prompt: hello, world", "prompt: hello again")
    _edit(repo, "shards/lab.yaml", "  - name: lab-fast-002\n",
          "  - name: lab-fast-002\n    config:\n      crash_on_reload: true\n")  # fmt: skip
    bad = commit_all(repo, "a prompt, and a config that crashes lab-fast-002 on reload")
    result, rec = await _apply(repo)
    assert result.outcome is Outcome.ROLLED_BACK, rec.notes
    assert result.exit_code == 3
    failed = [f for k, f in rec.notes if k == "box.failed"]
    assert [f["agent"] for f in failed] == ["lab-fast-002"], failed
    assert "died reloading" in str(failed[0]["reason"])
    assert sorted(f["agent"] for k, f in rec.notes if k == "box.restored") == sorted(NAMES)
    for name, agent in agents.items():
        file_sha, stamp_sha, loaded, stamp = await _truth(openssh_box, name, agent)
        assert file_sha == stamp_sha == loaded == good_shas[name]
        assert stamp["outcome"] == "rolled-back"
        assert stamp["blocked_revision"] != bad  # a reload that crashes is no verdict
    restarted = await asyncio.to_thread(agents["lab-fast-002"].health)
    assert restarted["pid"] != pids["lab-fast-002"]  # the crashed agent was started again
    kept = await asyncio.to_thread(agents["lab-fast-001"].health)
    assert kept["pid"] == pids["lab-fast-001"] and kept["reloads"] == 3  # good, bad, restore
    secrets = BoxPaths.of(str(_config_path(openssh_box, "lab-fast-001"))).secrets
    assert Path(secrets).stat().st_mode & 0o777 == 0o600
    assert ENV["RECONCILER_SECRET_API_KEY"] not in json.dumps([n for _, n in rec.notes])
