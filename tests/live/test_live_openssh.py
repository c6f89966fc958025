"""Live reading against a real OpenSSH sshd: drift from a hand edit, a changed host key refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import asyncssh

from reconciler.config.repo import Repo, load_repo
from reconciler.diff import AgentStatus, diff_live
from reconciler.model.box import BoxPaths
from reconciler.model.live import BoxState, LiveBox
from reconciler.render import render_payload, sha256_hex
from reconciler.render.stamp import make_stamp
from reconciler.testing.openssh import OpenSshBox
from reconciler.transport.link import FleetLink

SCHEMA = Path(__file__).resolve().parents[2] / "fleet-config-example/schemas/agent.schema.json"
NAME = "lab-fast-001"


def _repo(box: OpenSshBox) -> Repo:
    """A one-agent repo whose agent is the sshd box: its port, user, keys, and a path under it."""
    config_path = box.root / "etc" / "agent" / "config.yaml"
    health = box.root / "health.json"
    files = {
        "fleet.yaml": (
            "fleet_id: lab\n"
            "connection:\n"
            f"  user: {box.user}\n"
            f"  key: {box.client_key}\n"
            f"  known_hosts: {box.known_hosts}\n"
            "  connect_timeout_s: 5\n"
            "  command_timeout_s: 10\n"
            "  connect_retries: 0\n"
            f"  allowed_paths: [{config_path.parent}]\n"
        ),
        "agents/_base.yaml": (
            f"config_path: {config_path}\n"
            f"commands:\n  health: [cat, {health}]\n"
            "config:\n  model: claude-haiku-4-5\n  prompt: hi\n  max_tokens: 512\n"
            "  api_key: {secret: api_key}\n"
        ),
        "agents/tier-fast.yaml": "config:\n  concurrency: 4\n",
        "secrets/index.yaml": "secrets:\n  - name: api_key\n",
        "shards/lab.yaml": f"agents:\n  - name: {NAME}\n    tier: fast\n"
        f"    host: 127.0.0.1\n    port: {box.port}\n",
    }
    out = {k: v.encode() for k, v in files.items()}
    out["schemas/agent.schema.json"] = SCHEMA.read_bytes()
    return load_repo(out)


def _seed(repo: Repo) -> BoxPaths:
    """Write the agent's rendered config, its stamp and a health answer, as apply would."""
    agent = repo.agents[NAME].agent
    paths = BoxPaths.of(agent.config_path, agent.secrets_path)
    data = render_payload(agent.config)
    stamp = make_stamp(
        fleet_id="lab", agent=NAME, revision="a" * 40, config_sha256=sha256_hex(data),
        rollout_id="seed", outcome="applied", now=datetime.now(UTC),
    )  # fmt: skip
    Path(paths.config).parent.mkdir(parents=True, exist_ok=True)
    Path(paths.config).write_bytes(data)
    Path(paths.stamp).write_bytes(stamp.to_bytes())
    health = {
        "alive": True, "heartbeat_age_s": 0.5, "loaded_sha256": sha256_hex(data),
        "agent_version": "lab/1", "tasks_processed": 3, "queue_depth": 0, "uptime_s": 9.0,
    }  # fmt: skip
    (Path(agent.config_path).parents[2] / "health.json").write_text(json.dumps(health))
    return paths


async def _read(repo: Repo) -> LiveBox:
    agents = [ea.agent for ea in repo.agents.values()]
    async with FleetLink(repo.fleet.connection, Path("/")) as link:
        return (await link.read(agents, repo.fleet.fleet_id))[NAME]


async def test_hand_edit_on_an_openssh_box_is_drift(openssh_box: OpenSshBox) -> None:
    """Read over real sshd: in sync first, then a hand edit is drift in the live diff."""
    repo = _repo(openssh_box)
    paths = _seed(repo)
    box = await _read(repo)
    assert box.state is BoxState.MANAGED and not box.drifted
    assert box.health is not None and box.health.agent_version == "lab/1"
    assert diff_live(repo, [box]).agents == ()

    config = Path(paths.config)
    config.write_bytes(config.read_bytes().replace(b"max_tokens: 512", b"max_tokens: 4096"))
    box = await _read(repo)
    assert box.drifted
    (agent,) = diff_live(repo, [box]).agents
    assert agent.status is AgentStatus.DRIFTED
    assert [(c.dotted, c.old, c.new) for c in agent.changes] == [("max_tokens", 4096, 512)]


async def test_changed_host_key_of_an_openssh_box_is_refused(openssh_box: OpenSshBox) -> None:
    """known_hosts holding another key: UNKNOWN naming host and both fingerprints; untouched."""
    repo = _repo(openssh_box)
    paths = _seed(repo)
    real = asyncssh.read_public_key(f"{openssh_box.host_key}.pub").get_fingerprint("sha256")
    other = asyncssh.generate_private_key("ssh-ed25519")
    line = other.export_public_key("openssh").decode().split()
    openssh_box.known_hosts.write_text(f"[127.0.0.1]:{openssh_box.port} {line[0]} {line[1]}\n")
    before = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in openssh_box.root.rglob("*")
        if p.is_file()
    }
    box = await _read(repo)
    assert box.state is BoxState.UNKNOWN
    reason = box.reason or ""
    assert f"[127.0.0.1]:{openssh_box.port}" in reason
    assert real in reason and other.get_fingerprint("sha256") in reason
    assert box.config_bytes is None and box.stamp is None
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in openssh_box.root.rglob("*")
        if p.is_file()
    }
    assert after == before
    assert Path(paths.config).exists()
