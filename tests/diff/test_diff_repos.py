"""Pull-request mode: two loaded repos (in memory) -> the fleet diff, agent by agent."""

from __future__ import annotations

from reconciler.config.repo import Repo, load_repo
from reconciler.diff import AgentStatus, diff_repos, group_agents, summarise

from .conftest import Edit


def _load(files: dict[str, bytes]) -> Repo:
    return load_repo(files)


def test_diff_of_a_repo_with_itself_is_empty(example_repo: Repo) -> None:
    """No agent and no fleet setting differs between a repo and itself."""
    d = diff_repos(example_repo, example_repo)
    assert d.agents == ()
    assert d.unchanged == 200
    assert not d.has_changes


def test_tier_model_change_groups_the_tier(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A tier's model change is one group: '120 agents in tier fast', set in the tier file."""
    head = _load(
        edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    )
    d = diff_repos(example_repo, head)
    groups = group_agents(d.agents)
    assert [g.scope() for g in groups] == ["120 agents in tier fast"]
    (change,) = groups[0].first.changes
    assert (change.dotted, change.old, change.new) == (
        "model",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    )
    assert change.source == "agents/tier-fast.yaml:5"
    assert change.old_source == "agents/tier-fast.yaml:5"
    assert change.cost_impacting
    assert not change.restart_required
    assert d.approvers == ("@acme/agent-platform-leads",)


def test_shard_override_splits_groups_by_old_value(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A shard-wide max_tokens makes one group per tier (the old values differ)."""
    files = edit(
        example_files,
        "shards/eu-west.yaml",
        "    log_level: warning\n",
        "    log_level: warning\n    max_tokens: 2048\n",
    )
    d = diff_repos(example_repo, _load(files))
    scopes = {g.scope(): g for g in group_agents(d.agents)}
    assert set(scopes) == {
        "42 agents in tier fast, shard eu-west",
        "17 agents in tier smart, shard eu-west",
    }
    smart = scopes["17 agents in tier smart, shard eu-west"].first.changes[0]
    assert (smart.old, smart.new, smart.source) == (4096, 2048, "shards/eu-west.yaml:12")
    # eu-west batch agents already had 2048 from their tier: no change for them.
    assert all(a.tier != "batch" for a in d.agents)


def test_agent_entry_override_names_its_line(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """An override in one agent's entry is attributed to that entry's line."""
    files = edit(
        example_files,
        "shards/us-east.yaml",
        '    labels: {canary: "true"}\n',
        '    labels: {canary: "true"}\n    config: {temperature: 0.5}\n',
    )
    d = diff_repos(example_repo, _load(files))
    (agent,) = d.agents
    assert agent.agent == "us-east-fast-001"
    assert agent.changes[0].source == "shards/us-east.yaml:16"
    assert agent.cost is None


def test_null_removal_names_where_it_was_removed(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A key deleted by a null is a removal attributed to the line of the null."""
    files = edit(
        example_files,
        "agents/tier-smart.yaml",
        "  temperature: 0.3\n",
        "  temperature: 0.3\n  debug: null\n",
    )
    d = diff_repos(example_repo, _load(files))
    change = d.agents[0].changes[0]
    assert (change.dotted, str(change.kind), change.old) == (
        "debug",
        "removed",
        {"trace_sampling": 0.01},
    )
    assert change.source == "removed at agents/tier-smart.yaml:11"
    assert change.old_source == "agents/_base.yaml:34"


def test_added_and_removed_agents(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A new entry is added (a new agent costs: no history), a deleted one removed."""
    files = edit(
        example_files,
        "shards/us-east.yaml",
        "  - name: us-east-fast-002\n    tier: fast\n    host: 10.10.0.12\n",
        "  - name: us-east-fast-900\n    tier: fast\n    host: 127.0.9.1\n",
    )
    d = diff_repos(example_repo, _load(files), cost_per_day={"us-east-fast-002": 4.0})
    by = {a.agent: a for a in d.agents}
    assert by["us-east-fast-900"].status is AgentStatus.ADDED
    assert by["us-east-fast-002"].status is AgentStatus.REMOVED
    assert by["us-east-fast-900"].cost is not None
    assert by["us-east-fast-900"].cost.delta_per_day is None
    assert "no cost history" in by["us-east-fast-900"].cost.note
    assert by["us-east-fast-002"].cost is not None
    assert by["us-east-fast-002"].cost.delta_per_day == -4.0
    model = next(c for c in by["us-east-fast-900"].changes if c.dotted == "model")
    assert str(model.kind) == "added" and model.cost_impacting
    s = summarise(d)
    assert (s.added, s.removed, s.rollout) == (1, 1, 2)


def test_settings_change_rolls_nothing_out(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A labels change is a settings change on every agent, with no rollout."""
    files = edit(example_files, "agents/_base.yaml", "team: support-platform", "team: support")
    d = diff_repos(example_repo, _load(files))
    assert len(d.agents) == 200
    assert all(a.status is AgentStatus.UNCHANGED and not a.rollout for a in d.agents)
    assert all(a.access == () for a in d.agents)
    setting = d.agents[0].settings[0]
    assert setting.dotted == "labels.team"
    assert setting.source == "agents/_base.yaml:11"
    s = summarise(d)
    assert (s.rollout, s.settings_only) == (0, 200)
    assert d.has_changes


def test_model_price_ratio_gives_a_cost_delta(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """haiku-4-5 -> sonnet-4-5 triples the price per token: +2x today's cost per day."""
    head = _load(
        edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    )
    fast = sorted(a for a, ea in example_repo.agents.items() if ea.agent.tier == "fast")
    d = diff_repos(example_repo, head, cost_per_day=dict.fromkeys(fast, 1.5))
    (group,) = group_agents(d.agents)
    cost = group.first.cost
    assert cost is not None
    assert cost.ratio == 3.0
    assert cost.delta_per_day == 3.0
    assert group.cost_delta_per_day == 360.0
    assert summarise(d).cost_delta_per_day == 360.0


def test_unpriced_model_says_no_estimate(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A model missing from fleet.yaml's price table gives no figure, and names the model
    and the file to add it to."""
    files = edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-haiku-9")
    schema = "schemas/agent.schema.json"
    head = _load(edit(files, schema, '"claude-opus-4-1"]', '"claude-opus-4-1", "claude-haiku-9"]'))
    d = diff_repos(example_repo, head, cost_per_day={"us-east-fast-001": 1.0})
    cost = next(a.cost for a in d.agents if a.agent == "us-east-fast-001")
    assert cost is not None
    assert cost.delta_per_day is None
    assert cost.ratio is None
    assert cost.missing_models == ("claude-haiku-9",)
    assert "claude-haiku-9 not in the price table: add it to fleet.yaml `prices.models`" in (
        cost.note
    )


def test_fleet_settings_are_listed(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """A fleet.yaml policy change shows as a fleet setting and counts as a change."""
    d = diff_repos(
        example_repo, _load(edit(example_files, "fleet.yaml", "soak_s: 600", "soak_s: 300"))
    )
    assert d.agents == ()
    assert [(c.dotted, c.old, c.new) for c in d.fleet_settings] == [
        ("rollout.soak_s", 600.0, 300.0)
    ]
    assert d.has_changes


def test_secrets_fingerprint_change_rolls_out(example_repo: Repo) -> None:
    """A changed secrets-file fingerprint is a change of its own, shown by fingerprint only."""
    names = sorted(example_repo.agents)
    old = dict.fromkeys(names, "hmac:00000000aaaaaaaa")
    new = {**old, names[0]: "hmac:11111111bbbbbbbb"}
    d = diff_repos(example_repo, example_repo, base_secrets=old, head_secrets=new)
    (agent,) = d.agents
    assert agent.agent == names[0]
    assert agent.secrets is not None and agent.secrets.changed
    assert agent.rollout
    assert agent.status is AgentStatus.UNCHANGED


def test_agents_come_sorted_by_name(
    example_files: dict[str, bytes], example_repo: Repo, edit: Edit
) -> None:
    """Agents are listed by name, whatever order the files hold them in."""
    head = _load(edit(example_files, "agents/_base.yaml", "log_level: info", "log_level: debug"))
    names = [a.agent for a in diff_repos(example_repo, head).agents]
    assert names == sorted(names)
    # eu-west sets its own log_level, so its agents do not change.
    assert names == sorted(
        n for n, ea in example_repo.agents.items() if ea.agent.shard != "eu-west"
    )
