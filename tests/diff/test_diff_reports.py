"""Reports of a fleet diff: text, markdown (the PR comment) and JSON; secrets never shown."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import jsonschema
import pytest

from reconciler.config.repo import Repo, load_repo
from reconciler.devtools.schemas import expected
from reconciler.diff import (
    AgentDiff,
    AgentStatus,
    ChangeKind,
    CostEstimate,
    FieldChange,
    FleetDiff,
    diff_repos,
)
from reconciler.diff.values import secret_names
from reconciler.report import GITHUB_LIMIT, render_json, render_markdown, render_text
from reconciler.secrets import SecretValues, fingerprint, render_secrets

from .conftest import ROOT, edit_files

GOLDEN = ROOT / "tests" / "golden" / "diff"


def _pr_change(files: dict[str, bytes]) -> dict[str, bytes]:
    """A realistic PR: tier model, shard token limit, a prompt, a user, agents in and out."""
    f = edit_files(files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    f = edit_files(
        f,
        "shards/eu-west.yaml",
        "    log_level: warning\n",
        "    log_level: warning\n    max_tokens: 2048\n",
    )
    f = edit_files(
        f, "agents/tier-batch.yaml", "in three sentences", "in two sentences,\n    plainly,"
    )
    f = edit_files(f, "shards/ap-south.yaml", "defaults:\n", "defaults:\n  user: ops\n")
    f = edit_files(
        f,
        "shards/us-east.yaml",
        "  - name: us-east-fast-002\n    tier: fast\n    host: 10.10.0.12\n",
        "  - name: us-east-fast-900\n    tier: fast\n    host: 127.0.9.1\n",
    )
    return edit_files(f, "fleet.yaml", "soak_s: 600", "soak_s: 300")


@pytest.fixture(scope="module")
def pr_diff(example_files: dict[str, bytes], example_repo: Repo) -> FleetDiff:
    head = load_repo(_pr_change(example_files))
    costs = {"us-east-fast-002": 2.5, "us-east-smart-001": 7.0}
    return diff_repos(
        example_repo,
        head,
        base_label="main (1111111aaaaa)",
        head_label="pr-42 (2222222bbbbb)",
        cost_per_day=costs,
    )


def test_markdown_matches_the_stored_comment(pr_diff: FleetDiff) -> None:
    """The PR comment of a realistic change is exactly tests/golden/diff/pr-example.md."""
    text = render_markdown(pr_diff)
    path = GOLDEN / "pr-example.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_markdown_puts_cost_impacting_first_and_names_the_approvers(pr_diff: FleetDiff) -> None:
    """The review note names fleet.review.cost_impacting_approvers, before any other section."""
    text = render_markdown(pr_diff)
    assert "@acme/agent-platform-leads" in text
    assert text.index("#### Cost-impacting changes") < text.index("#### Other changes")
    assert text.index("#### Other changes") < text.index("#### Access, no rollout")
    assert "<details>" in text and "</details>" in text


def test_text_groups_agents_by_tier(pr_diff: FleetDiff) -> None:
    """The terminal report shows one line per group: 'N agents in tier fast'."""
    text = render_text(pr_diff)
    assert "agents in tier fast" in text
    assert "model claude-haiku-4-5 → claude-sonnet-4-5  (agents/tier-fast.yaml:5)  [cost]" in text
    assert "Access, no rollout:" in text  # shard ap-south's user: ops
    assert "user agent → ops  (shards/ap-south.yaml:6; was fleet.yaml:7)  [access]" in text
    assert "rollout.soak_s 600.0 → 300.0" in text


def test_reports_are_deterministic(pr_diff: FleetDiff) -> None:
    """The same diff, agents in any order, renders the same bytes."""
    shuffled = list(pr_diff.agents)
    random.Random(7).shuffle(shuffled)
    other = pr_diff.model_copy(update={"agents": tuple(shuffled)})
    assert render_markdown(other) == render_markdown(pr_diff)
    assert render_text(other) == render_text(pr_diff)


def test_json_matches_its_schema(pr_diff: FleetDiff) -> None:
    """`--format json` validates against schemas/diff.schema.json."""
    schema = json.loads((ROOT / "schemas" / "diff.schema.json").read_text())
    doc = json.loads(render_json(pr_diff))
    jsonschema.validate(doc, schema)
    assert doc["summary"]["cost_impacting"] > 0
    assert doc["groups"][0]["cost_impacting"] is True


def test_diff_schema_file_is_current() -> None:
    """schemas/diff.schema.json is what the models generate (`python -m
    reconciler.devtools.schemas`)."""
    path = ROOT / "schemas" / "diff.schema.json"
    assert path.read_text() == expected(ROOT)[path]


def test_no_changes_says_so(example_repo: Repo) -> None:
    """An empty diff reads as 'no changes' in every format."""
    d = diff_repos(example_repo, example_repo)
    assert "No changes" in render_text(d)
    assert "No changes" in render_markdown(d)
    assert json.loads(render_json(d))["summary"]["has_changes"] is False


def _fingerprints(repo: Repo, values: SecretValues, key: bytes) -> dict[str, str]:
    return {
        name: fingerprint(render_secrets(values.subset(secret_names(ea.agent.config))), key)
        for name, ea in repo.agents.items()
    }


def test_secret_change_shows_no_value_in_any_format(example_files: dict[str, bytes]) -> None:
    """A changed reference and a changed secrets file show names and fingerprints, never values."""
    files = edit_files(
        example_files,
        "secrets/index.yaml",
        "  - name: kb_token\n",
        "  - name: kb_token\n  - name: anthropic_api_key_v2\n",
    )
    base = load_repo(files)
    head = load_repo(
        edit_files(
            files,
            "agents/tier-smart.yaml",
            "  temperature: 0.3\n",
            "  temperature: 0.3\n  api_key: {secret: anthropic_api_key_v2}\n",
        )
    )
    secret_values = {
        "anthropic_api_key": "sk-ant-OLD-0f9e8d7c6b5a",
        "anthropic_api_key_v2": "sk-ant-NEW-1a2b3c4d5e6f",
        "kb_token": "kb-tok-77aa88bb99cc",
    }
    old = SecretValues(secret_values)
    new = SecretValues({**secret_values, "kb_token": "kb-tok-ROTATED-00dd11"})
    key = b"fleet-key-do-not-print"
    d = diff_repos(
        base,
        head,
        base_secrets=_fingerprints(base, old, key),
        head_secrets=_fingerprints(head, new, key),
    )
    smart = next(a for a in d.agents if a.tier == "smart")
    (ref,) = smart.changes
    assert ref.secret and ref.new == {"secret": "anthropic_api_key_v2"}
    assert smart.secrets is not None and smart.secrets.changed
    outputs = {"text": render_text(d), "markdown": render_markdown(d), "json": render_json(d)}
    forbidden = [*secret_values.values(), "kb-tok-ROTATED-00dd11", key.decode(), "sk-ant"]
    for fmt, out in outputs.items():
        for value in forbidden:
            assert value not in out, f"{fmt} shows {value!r}"
        assert "anthropic_api_key_v2" in out, fmt
        assert "changed" in out, fmt
    short = smart.secrets.new
    assert short is not None and short.startswith("hmac:")
    assert short[:13] in outputs["text"] and short[:13] in outputs["markdown"]


def _agent(i: int, *, distinct: bool) -> AgentDiff:
    tier = ("fast", "smart", "batch")[i % 3]
    value = 1000 + i if distinct else 2048
    return AgentDiff(
        agent=f"agent-{i:05d}",
        status=AgentStatus.CHANGED,
        tier=tier,
        shard=f"shard-{i % 7}",
        changes=(
            FieldChange(
                path=("max_tokens",),
                kind=ChangeKind.CHANGED,
                old=512,
                new=value,
                source=f"shards/shard-{i % 7}.yaml:{10 + i}",
                cost_impacting=True,
            ),
            FieldChange(
                path=("prompt",),
                kind=ChangeKind.CHANGED,
                old="You are an agent.\nBe brief.\n",
                new=f"You are agent {i}.\nBe thorough.\n" if distinct else "x\ny\n",
                source="agents/_base.yaml:13",
            ),
        ),
        cost=CostEstimate(note="no estimate for max_tokens: its cost depends on traffic"),
    )


def _big(distinct: bool, n: int = 10_000) -> FleetDiff:
    return FleetDiff(
        mode="pr",
        fleet_id="big",
        base="a",
        head="b",
        approvers=("@big/leads",),
        agents=tuple(_agent(i, distinct=distinct) for i in range(n)),
    )


def test_markdown_of_ten_thousand_distinct_changes_fits_a_comment() -> None:
    """10,000 agents with distinct changes: under 65,536 characters, saying what was elided."""
    text = render_markdown(_big(distinct=True))
    assert len(text) < GITHUB_LIMIT
    assert "more groups" in text and "not shown" in text
    assert "@big/leads" in text
    assert "**10000 agents to roll out**" in text


def test_markdown_of_one_huge_group_cuts_the_agent_list() -> None:
    """10,000 agents with the same change: one group, its agent list cut, the cut counted."""
    text = render_markdown(_big(distinct=False))
    assert len(text) < GITHUB_LIMIT
    assert "10000 agents in tiers batch, fast, smart" in text
    assert "9980 names elided" in text


def test_markdown_escapes_table_cells() -> None:
    """Pipes, backticks and HTML in values cannot break the table or the page."""
    d = FleetDiff(
        mode="pr",
        fleet_id="f",
        base="a",
        head="b",
        agents=(
            AgentDiff(
                agent="a1",
                status=AgentStatus.CHANGED,
                changes=(
                    FieldChange(
                        path=("cmd",), kind=ChangeKind.CHANGED, old="a|b", new="`x` </details>"
                    ),
                ),
            ),
        ),
    )
    text = render_markdown(d)
    assert "`a\\|b`" in text
    assert "`` `x` </details> ``" in text
    # The group's own close tag, plus the value's inside code spans (table row and details).
    assert text.count("</details>") == 3
    assert text.count("\n</details>") == 1


def test_markdown_budget_is_respected_at_every_size() -> None:
    """Whatever the fleet size, the comment stays within the budget it is given."""
    for n in (1, 50, 400, 3000):
        d = _big(distinct=True, n=n)
        assert len(render_markdown(d, budget=20_000)) <= 20_000


def test_text_report_lists_unknown_boxes_with_reasons() -> None:
    """Boxes not compared are listed last, each with its reason."""
    d = FleetDiff(
        mode="live",
        fleet_id="f",
        base="live",
        head="HEAD",
        agents=(
            AgentDiff(agent="b1", status=AgentStatus.UNKNOWN, reason="127.0.0.11:22: timed out"),
            AgentDiff(
                agent="b2", status=AgentStatus.UNKNOWN, reason="127.0.0.12:22: host key mismatch"
            ),
        ),
    )
    text = render_text(d)
    assert "Not compared:" in text
    assert "b1: 127.0.0.11:22: timed out" in text
    assert "b2: 127.0.0.12:22: host key mismatch" in text
    md = render_markdown(d)
    assert "2 unknown" in md and "host key mismatch" in md


def test_golden_dir_exists() -> None:
    """Golden files live in tests/golden/diff."""
    assert Path(GOLDEN).is_dir()
