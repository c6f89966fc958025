"""`reconcile explain` on the example repo: each value with the file:line chain that set it.

Expected line numbers are found in the example's own text, so the tests read as
"the line of `debug: null` in eu-west.yaml" and survive edits elsewhere in the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
REPO = "fleet-config-example"


def at(rel: str, needle: str, after: str | None = None) -> str:
    """`fleet-config-example/REL:LINE` of the first line holding `needle` (after `after`)."""
    lines = (ROOT / REPO / rel).read_text(encoding="utf-8").splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    line = next(i for i, text in enumerate(lines[start:], start) if needle in text) + 1
    return f"{REPO}/{rel}:{line}"


def explain(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["explain", *args, "--repo", REPO])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_agent_null_delete_names_the_agent_line_and_what_it_removed() -> None:
    """eu-west-fast-003's `debug: null` removes _base.yaml's debug map."""
    code, out, _ = explain("eu-west-fast-003", "debug")
    assert code == 0
    removed = at("shards/eu-west.yaml", "debug: null")
    assert out == (
        f"config.debug: not set  (removed at {removed},"
        f" overrides {at('agents/_base.yaml', 'debug:')})\n"
    )


def test_tier_null_delete_names_the_tier_line() -> None:
    """tier-batch's `debug: null` removes debug for every batch agent."""
    code, out, _ = explain("ap-south-batch-001", "debug")
    assert code == 0
    assert out == (
        f"config.debug: not set  (removed at {at('agents/tier-batch.yaml', 'debug: null')},"
        f" overrides {at('agents/_base.yaml', 'debug:')})\n"
    )


def test_removed_leaf_is_reported_removed_too() -> None:
    """A leaf of a removed map (debug.trace_sampling) is not set, removed at the same line."""
    code, out, _ = explain("eu-west-fast-003", "debug.trace_sampling")
    assert code == 0
    assert out.startswith("config.debug.trace_sampling: not set  (removed at ")
    assert at("shards/eu-west.yaml", "debug: null") in out


def test_list_replacement_names_the_shard_line_over_tier_and_base() -> None:
    """eu-west's `tags: [support, eu]` replaces tier-fast's list, which replaced _base's."""
    code, out, _ = explain("eu-west-fast-001", "tags")
    assert code == 0
    assert out == (
        f'config.tags = ["support", "eu"]  ({at("shards/eu-west.yaml", "tags:")},'
        f" overrides {at('agents/tier-fast.yaml', 'tags:')},"
        f" {at('agents/_base.yaml', 'tags:')})\n"
    )


def test_deep_merge_shows_each_leaf_and_its_own_chain() -> None:
    """tier-batch sets retry.max_attempts; retry.backoff_s stays from _base.yaml."""
    code, out, _ = explain("ap-south-batch-001", "retry")
    assert code == 0
    assert out.splitlines() == [
        f"config.retry  ({at('agents/tier-batch.yaml', 'retry:')},"
        f" overrides {at('agents/_base.yaml', 'retry:')})",
        f"  config.retry.backoff_s = 2  ({at('agents/_base.yaml', 'backoff_s:')})",
        f"  config.retry.max_attempts = 6  ({at('agents/tier-batch.yaml', 'max_attempts:')},"
        f" overrides {at('agents/_base.yaml', 'max_attempts:')})",
    ]


def test_tier_overrides_base_for_model() -> None:
    """tier-fast's model overrides _base.yaml's; tier-smart's gives another model."""
    code, out, _ = explain("us-east-fast-001", "model")
    assert code == 0
    assert out == (
        f"config.model = claude-haiku-4-5  ({at('agents/tier-fast.yaml', 'model:')},"
        f" overrides {at('agents/_base.yaml', 'model:')})\n"
    )
    code, out, _ = explain("us-east-smart-001", "config.model")
    assert code == 0
    assert out.startswith(
        f"config.model = claude-sonnet-4-5  ({at('agents/tier-smart.yaml', 'model:')}"
    )


def test_agent_override_wins_over_tier_and_base() -> None:
    """us-east-smart-002 sets max_tokens in its own entry: that line wins over tier and base."""
    code, out, _ = explain("us-east-smart-002", "max_tokens")
    assert code == 0
    assert out == (
        "config.max_tokens = 8192  "
        f"({at('shards/us-east.yaml', 'max_tokens: 8192', after='us-east-smart-002')},"
        f" overrides {at('agents/tier-smart.yaml', 'max_tokens:')},"
        f" {at('agents/_base.yaml', 'max_tokens:')})\n"
    )


def test_reconciler_fields_come_from_fleet_connection_and_base() -> None:
    """user comes from fleet.yaml's connection; config_path from _base.yaml."""
    assert explain("us-east-fast-001", "user")[1] == (
        f"user = agent  ({at('fleet.yaml', 'user:', after='connection:')})\n"
    )
    assert explain("us-east-fast-001", "config_path")[1] == (
        f"config_path = /etc/agent/config.yaml  ({at('agents/_base.yaml', 'config_path:')})\n"
    )


def test_string_that_reads_as_another_type_is_shown_quoted() -> None:
    """labels.canary is the string "true", shown quoted so it is not taken for a boolean."""
    code, out, _ = explain("us-east-fast-001", "labels.canary")
    assert code == 0
    assert out.startswith('labels.canary = "true"  ')


def test_json_format_gives_the_chain_with_files_lines_and_deletes() -> None:
    """--format json: the chain lowest first, each with file, line, layer and removed."""
    code, out, _ = explain("eu-west-fast-003", "debug", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["agent"], doc["field"], doc["present"]) == (
        "eu-west-fast-003",
        "config.debug",
        False,
    )
    chain = [(c["file"], c["line"], c["layer"], c["removed"]) for c in doc["chain"]]
    base_file, base_line = at("agents/_base.yaml", "debug:").rsplit(":", 1)
    shard_file, shard_line = at("shards/eu-west.yaml", "debug: null").rsplit(":", 1)
    assert chain == [
        (base_file, int(base_line), "base", False),
        (shard_file, int(shard_line), "agent eu-west-fast-003", True),
    ]


def test_unknown_agent_and_field_exit_1_with_a_hint() -> None:
    """A typo in the agent or the field is exit 1, with what to run or what exists."""
    code, _, err = explain("us-east-fast-999", "model")
    assert code == 1
    assert "reconcile agents" in err
    code, _, err = explain("us-east-fast-001", "modle")
    assert code == 1
    assert "max_tokens" in err
