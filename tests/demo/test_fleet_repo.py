"""DIR/fleet and the seeded boxes: the product's own render and stamp, no false drift."""

from __future__ import annotations

import stat
import subprocess

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.config.repo import load_repo
from reconciler.demo import FIRST_FAST_MODEL, HEAD_FAST_MODEL, HEAD_MESSAGE, DemoFleet
from reconciler.demo.fleetrepo import SHARDS, TIERS, agent_names
from reconciler.model.box import BoxPaths, parse_stamp
from reconciler.render.canonical import RENDERER_VERSION, render_payload, sha256_hex
from reconciler.repo import read_revision, read_work_tree
from reconciler.secrets.values import fingerprint, render_secrets
from reconciler.secretstore import fleet_key, resolve_values


def test_agents_spread_over_every_shard_and_tier() -> None:
    """Nine agents cover the 3 x 3 shards and tiers; names are unique."""
    names = agent_names(9)
    assert {(s, t) for _, s, t in names} == {(s, t) for s in SHARDS for t in TIERS}
    assert len({n for n, _, _ in names}) == 9


async def test_the_fleet_repo_validates(demo_fleet: DemoFleet) -> None:
    """`reconcile validate --repo DIR/fleet` passes."""
    result = CliRunner().invoke(app, ["validate", "--repo", str(demo_fleet.repo)])
    assert result.exit_code == 0, result.output


async def test_agents_point_at_their_boxes(demo_fleet: DemoFleet) -> None:
    """Each agent's host, port and URLs are its box's; key and known_hosts are DIR's."""
    repo = load_repo(read_work_tree(demo_fleet.repo))
    assert sorted(repo.agents) == sorted(demo_fleet.names)
    for name, effective in repo.agents.items():
        agent, box = effective.agent, demo_fleet.box(name)
        assert (agent.host, agent.port) == ("127.0.0.1", box.ssh_port)
        assert agent.health_url == box.health_url
        assert agent.metrics_url == box.metrics_url
        assert agent.config_path == "/etc/agent/config.yaml"
        assert agent.key == str(demo_fleet.dir.key)
        assert agent.known_hosts == str(demo_fleet.dir.known_hosts)
        assert agent.commands.reload == ["agentctl", "reload"]
    assert repo.fleet.rollout.waves == [1, 5, "25%", "100%"]
    lines = demo_fleet.dir.known_hosts.read_text().splitlines()
    assert sorted(int(line.split()[0].rsplit(":", 1)[1]) for line in lines) == sorted(
        demo_fleet.box(n).ssh_port for n in demo_fleet.names
    )


async def test_head_commit_changes_only_the_fast_tiers_model(demo_fleet: DemoFleet) -> None:
    """First commit vs head: the fast agents' model, and nothing else."""
    first = load_repo(read_revision(demo_fleet.repo, demo_fleet.first_commit).files)
    head = load_repo(read_revision(demo_fleet.repo, demo_fleet.head_commit).files)
    log = subprocess.run(
        ["git", "log", "--format=%s"],
        cwd=demo_fleet.repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log[0] == HEAD_MESSAGE
    assert len(log) == 2
    for name in demo_fleet.names:
        a, b = first.agent(name).agent.config, head.agent(name).agent.config
        if first.agent(name).agent.tier == "fast":
            assert (a["model"], b["model"]) == (FIRST_FAST_MODEL, HEAD_FAST_MODEL)
            assert {**a, "model": None} == {**b, "model": None}
        else:
            assert a == b


async def test_boxes_hold_exactly_what_an_apply_of_the_first_commit_writes(
    demo_fleet: DemoFleet,
) -> None:
    """Config bytes, history copy, secrets (0600, fingerprint) and stamp match the product's."""
    repo = load_repo(read_revision(demo_fleet.repo, demo_fleet.first_commit).files)
    key = fleet_key(repo.fleet, demo_fleet.repo, env={})
    assert key is not None
    for name in demo_fleet.names:
        box, agent = demo_fleet.box(name), repo.agent(name).agent
        paths = BoxPaths.of(agent.config_path, agent.secrets_path)
        data = render_payload(agent.config)
        assert box.path(paths.config).read_bytes() == data
        assert box.path(paths.history_file(sha256_hex(data))).read_bytes() == data
        stamp = parse_stamp(box.path(paths.stamp).read_bytes())
        assert (stamp.fleet_id, stamp.agent) == (repo.fleet.fleet_id, name)
        assert (stamp.revision, stamp.config_sha256) == (demo_fleet.first_commit, sha256_hex(data))
        assert (stamp.outcome, stamp.renderer_version) == ("applied", RENDERER_VERSION)
        secrets = box.path(paths.secrets)
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        values = resolve_values(["anthropic_api_key", "kb_token"], repo.fleet, demo_fleet.repo)
        assert secrets.read_bytes() == render_secrets(values)
        assert stamp.secrets_fingerprint == fingerprint(secrets.read_bytes(), key)


async def test_secret_values_stay_outside_the_repos_git_tree(demo_fleet: DemoFleet) -> None:
    """No secret value, key or fleet key is in any commit of DIR/fleet."""
    patterns = ["-e", "sk-demo-", "-e", "PRIVATE KEY", "-e", "AGE-SECRET-KEY-1[0-9A-Z]{20}"]
    tracked = subprocess.run(
        ["git", "grep", "-I", "-E", "-l", *patterns, "HEAD~1", "HEAD"],
        cwd=demo_fleet.repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tracked.stdout == ""
    for path in (demo_fleet.dir.age_identity, demo_fleet.dir.key, demo_fleet.dir.fleet_key):
        assert not path.resolve().is_relative_to(demo_fleet.repo.resolve())


@pytest.mark.demo_agents(1)
async def test_a_one_agent_fleet_leaves_shards_empty_and_still_validates(
    demo_fleet: DemoFleet,
) -> None:
    """With fewer agents than shards, the other shards list no agents; the repo is valid."""
    assert demo_fleet.names == ["us-east-fast-001"]
    result = CliRunner().invoke(app, ["validate", "--repo", str(demo_fleet.repo)])
    assert result.exit_code == 0, result.output
