"""[access]: changes to where and how reconciler connects, what it runs, and the review rules.

They are a class of their own in every diff format, each with old -> new and the file
that set it; a config_path (or secrets_path) change is a rollout to the new path; and a
pull request is judged by the review rules of its base, never by the ones it brings.
"""

from __future__ import annotations

import json

import pytest

from reconciler.config.repo import Repo, load_repo
from reconciler.diff import FleetDiff, diff_repos, group_agents, summarise
from reconciler.diff.agent import _redacted
from reconciler.diff.model import ChangeKind
from reconciler.diff.values import ValueChange
from reconciler.report import render_json, render_markdown, render_text

from .conftest import Edit, edit_files, tiny_files

NEW_PATH = "/etc/agent/v2/config.yaml"


@pytest.fixture(scope="module")
def moved_diff(example_files: dict[str, bytes], example_repo: Repo) -> FleetDiff:
    head = load_repo(
        edit_files(
            example_files,
            "agents/_base.yaml",
            "config_path: /etc/agent/config.yaml",
            f"config_path: {NEW_PATH}",
        )
    )
    return diff_repos(example_repo, head, base_label="main", head_label="pr-7")


def test_config_path_change_is_an_access_rollout(moved_diff: FleetDiff) -> None:
    """A config_path change is [access], with old -> new and its file:line, and rolls out."""
    assert len(moved_diff.agents) == 200
    a = moved_diff.agents[0]
    (change,) = a.access
    assert (change.dotted, change.old, change.new) == (
        "config_path",
        "/etc/agent/config.yaml",
        NEW_PATH,
    )
    assert change.access
    assert change.source == "agents/_base.yaml:4"
    assert change.old_source == "agents/_base.yaml:4"
    assert a.settings == ()
    assert a.moved and a.rollout
    s = summarise(moved_diff)
    assert (s.rollout, s.settings_only, s.access, s.moved) == (200, 0, 200, 200)


def test_secrets_path_change_is_an_access_rollout() -> None:
    """The real secrets go to the new secrets_path: [access], and a rollout."""
    files = tiny_files()
    head = edit_files(
        files,
        "agents/_base.yaml",
        "config_path: /etc/agent/config.yaml\n",
        "config_path: /etc/agent/config.yaml\nsecrets_path: /etc/agent/world-readable.json\n",
    )
    d = diff_repos(load_repo(files), load_repo(head))
    assert len(d.agents) == 4
    assert all(a.rollout and a.moved for a in d.agents)
    (change,) = d.agents[0].access
    assert (change.dotted, change.kind, change.new) == (
        "secrets_path",
        "added",
        "/etc/agent/world-readable.json",
    )


@pytest.mark.parametrize(
    ("path", "old", "new", "field"),
    [
        ("shards/us-east.yaml", "host: 10.10.0.11\n", "host: 127.0.0.9\n", "host"),
        ("agents/_base.yaml", "[systemctl, reload, ai-agent]", "[sh, -c, curl]", "commands.reload"),
        ("agents/_base.yaml", "9464/healthz", "9465/healthz", "health_url"),
        ("agents/_base.yaml", "labels:\n", "user: root\nlabels:\n", "user"),
        ("agents/_base.yaml", "labels:\n", "port: 2222\nlabels:\n", "port"),
    ],
)
def test_agent_access_fields(
    example_files: dict[str, bytes],
    example_repo: Repo,
    edit: Edit,
    path: str,
    old: str,
    new: str,
    field: str,
) -> None:
    """host, commands, health_url, user, port: [access], never plain settings."""
    d = diff_repos(example_repo, load_repo(edit(example_files, path, old, new)))
    assert d.agents
    for a in d.agents:
        assert [c.dotted for c in a.access] == [field]
        assert a.settings == ()
        assert not a.rollout


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "known_hosts: ~/.ssh/fleet_known_hosts",
            "known_hosts: /dev/null",
            "connection.known_hosts",
        ),
        ("kb_token: /run/secrets/kb_token", "kb_token: /tmp/kb", "secrets.files.kb_token"),
        ("fleet_id: acme-support\n", "fleet_id: acme-support\nstate_dir: /tmp/s\n", "state_dir"),
        (
            "fleet_id: acme-support\n",
            "fleet_id: acme-support\nstate: postgresql://ops@db.evil:5432/reconciler\n",
            "state",
        ),
        (
            "source: scrape ",
            "source: prometheus\n  prometheus_url: http://evil:9090\n  #",
            "metrics",
        ),
        (
            'cost_impacting_approvers: ["@acme/agent-platform-leads"]',
            "cost_impacting_approvers: []",
            "review.cost_impacting_approvers",
        ),
    ],
)
def test_fleet_access_fields(
    example_files: dict[str, bytes],
    example_repo: Repo,
    edit: Edit,
    old: str,
    new: str,
    field: str,
) -> None:
    """known_hosts, secrets.files, state_dir, state, the metrics source, review rules: [access]."""
    d = diff_repos(example_repo, load_repo(edit(example_files, "fleet.yaml", old, new)))
    assert d.fleet_access
    assert all(c.dotted.startswith(field) and c.access for c in d.fleet_access)
    assert all(c.source == "fleet.yaml" for c in d.fleet_access)
    assert d.fleet_settings == ()
    assert d.has_changes
    assert summarise(d).fleet_access == len(d.fleet_access)


def test_policy_change_stays_a_fleet_setting(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """soak_s is a rollout policy, not access."""
    d = diff_repos(
        example_repo, load_repo(edit(example_files, "fleet.yaml", "soak_s: 600", "soak_s: 300"))
    )
    assert d.fleet_access == ()
    assert [c.dotted for c in d.fleet_settings] == ["rollout.soak_s"]


def test_text_report_shows_access(moved_diff: FleetDiff) -> None:
    """Text: a headline naming [access], the change with old -> new and its file."""
    out = render_text(moved_diff)
    assert "Access: 200 agents (200 moved: written to the new path)" in out
    assert "200 agents to roll out (200 moved)" in out
    assert "200 agents in tiers batch, fast, smart [moved]  [access]" in out
    assert (
        "config_path /etc/agent/config.yaml → /etc/agent/v2/config.yaml  (agents/_base.yaml:4)"
        "  [access, moved]"
    ) in out
    assert "no rollout" not in out


def test_markdown_report_shows_access(moved_diff: FleetDiff) -> None:
    """Markdown: an [access] review note and an access section with old, new, set at."""
    out = render_markdown(moved_diff)
    assert "**Access changes" in out
    assert "#### Access" in out
    assert (
        "| 200 agents in tiers batch, fast, smart | `config_path` | `/etc/agent/config.yaml`"
        " | `/etc/agent/v2/config.yaml`"
        " | `agents/_base.yaml:4` |"
    ) in out
    assert "no rollout" not in out


def test_json_report_shows_access(moved_diff: FleetDiff) -> None:
    """JSON: access changes per group and agent, counted in the summary."""
    doc = json.loads(render_json(moved_diff))
    (group,) = doc["groups"]
    assert group["access"] == [
        {
            "path": ["config_path"],
            "kind": "changed",
            "old": "/etc/agent/config.yaml",
            "new": NEW_PATH,
            "source": "agents/_base.yaml:4",
            "old_source": "agents/_base.yaml:4",
            "cost_impacting": False,
            "restart_required": False,
            "secret": False,
            "access": True,
        }
    ]
    assert group["settings"] == []
    assert doc["summary"]["access"] == 200
    assert doc["summary"]["moved"] == 200
    assert doc["diff"]["agents"][0]["access"][0]["path"] == ["config_path"]


def test_fleet_access_in_every_format(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A fleet.yaml known_hosts change: its own [access] section in text, markdown and JSON."""
    head = load_repo(
        edit(
            example_files,
            "fleet.yaml",
            "known_hosts: ~/.ssh/fleet_known_hosts",
            "known_hosts: /dev/null",
        )
    )
    d = diff_repos(example_repo, head)
    text = render_text(d)
    assert "Access, fleet-wide:" in text
    assert (
        "connection.known_hosts ~/.ssh/fleet_known_hosts → /dev/null  (fleet.yaml)  [access]"
    ) in text
    md = render_markdown(d)
    assert (
        "| fleet.yaml | `connection.known_hosts` | `~/.ssh/fleet_known_hosts` | `/dev/null`" in md
    )
    doc = json.loads(render_json(d))
    assert doc["diff"]["fleet_access"][0]["path"] == ["connection", "known_hosts"]
    assert doc["summary"]["fleet_access"] == 1


def test_access_approvers_are_named(example_files: dict[str, bytes], edit: Edit) -> None:
    """fleet.review.access_approvers is required for [access] changes, named in the comment."""
    files = edit_files(
        example_files,
        "fleet.yaml",
        "review:\n",
        'review:\n  access_approvers: ["@acme/security"]\n',
    )
    base = load_repo(files)
    head = load_repo(edit(files, "shards/us-east.yaml", "host: 10.10.0.11\n", "host: 127.0.0.9\n"))
    d = diff_repos(base, head)
    assert d.access_approvers == ("@acme/security",)
    md = render_markdown(d)
    assert "need review by @acme/security (`fleet.review.access_approvers`" in md
    assert "review by @acme/security" in render_text(d)


def test_head_cannot_remove_the_approvers_it_is_judged_by(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A head dropping cost_impacting_approvers still gets the base's; the rule change shows."""
    files = edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    files = edit_files(
        files,
        "fleet.yaml",
        'cost_impacting_approvers: ["@acme/agent-platform-leads"]',
        "cost_impacting_approvers: []",
    )
    d = diff_repos(example_repo, load_repo(files), base_label="main")
    assert d.approvers == ("@acme/agent-platform-leads",)
    assert d.rules_from == "main"
    md = render_markdown(d)
    assert "need review by @acme/agent-platform-leads" in md
    assert "review by nobody (set fleet.review.cost_impacting_approvers)" not in md
    assert [c.dotted for c in d.fleet_access] == ["review.cost_impacting_approvers"]
    assert "review.cost_impacting_approvers" in md.split("#### Access")[1]


def test_head_cannot_unflag_cost_in_its_schema(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """x-cost-impacting dropped from the head's schema: still cost-impacting, and [access]."""
    schema = json.loads(example_files["schemas/agent.schema.json"])
    schema["properties"]["model"].pop("x-cost-impacting")
    files = {**example_files, "schemas/agent.schema.json": json.dumps(schema).encode()}
    files = edit(files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    d = diff_repos(example_repo, load_repo(files))
    (group,) = group_agents(d.agents)
    assert group.cost_impacting
    (rule,) = d.fleet_access
    assert rule.source == "schemas/agent.schema.json"
    assert rule.dotted == "x-cost-impacting"
    assert "model" in rule.old and "model" not in rule.new  # type: ignore[operator]


def test_moved_and_payload_change_group_together(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A group keyed by its access changes too: a moved tier is not grouped with an unmoved one."""
    files = edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    files = edit_files(
        files, "agents/tier-fast.yaml", "config:\n", "config_path: /etc/agent/fast.yaml\nconfig:\n"
    )
    d = diff_repos(example_repo, load_repo(files))
    groups = group_agents(d.agents)
    assert [g.scope() for g in groups] == ["120 agents in tier fast"]
    assert [c.dotted for c in groups[0].first.access] == ["config_path"]


def test_a_credential_named_field_never_shows_its_values() -> None:
    """A low-entropy plain value in `kb.token` passes the secret scan; the diff still
    shows it as <redacted>, and an unrelated field as it is."""
    token = ValueChange(path=("kb", "token"), kind=ChangeKind.CHANGED, old="hunter22",
                        new="hunter33")  # fmt: skip
    assert _redacted(token) == ("<redacted>", "<redacted>", True)
    added = ValueChange(path=("db_password",), kind=ChangeKind.ADDED, old=None, new="pw-1")
    assert _redacted(added) == (None, "<redacted>", True)
    tokens = ValueChange(path=("max_tokens",), kind=ChangeKind.CHANGED, old=1024, new=2048)
    assert _redacted(tokens) == (1024, 2048, False)
