"""`reconcile diff` shows alert changes as their own section, with the compiled PromQL."""

from __future__ import annotations

import json

import pytest

from reconciler.alerts import compile_alerts
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import FleetDiff, diff_live, diff_repos
from reconciler.report.diff_json import render_json
from reconciler.report.diff_markdown import render_markdown
from reconciler.report.diff_text import render_text

NEW = b"""  - name: QueueBacklog
    metric: queue_depth
    above: 500
    for: 15m
"""


@pytest.fixture(scope="module")
def head(example_files: dict[str, bytes]) -> Repo:
    files = dict(example_files)
    health = files["alerts/health.yaml"].replace(b"above: 0.03", b"above: 0.05")
    files["alerts/health.yaml"] = health.replace(b"for: 2m", b"for: 3m") + NEW
    cost = files["alerts/cost.yaml"]
    files["alerts/cost.yaml"] = cost[: cost.index(b"  - name: OutputTokensPerTaskHigh")]
    return load_repo(files)


@pytest.fixture(scope="module")
def pr(example_repo: Repo, head: Repo) -> FleetDiff:
    return diff_repos(example_repo, head, base_label="main", head_label="pr")


def test_the_diff_lists_added_removed_and_changed_alerts(pr: FleetDiff) -> None:
    got = {(c.name, c.kind, c.fields) for c in pr.alerts}
    assert got == {
        ("QueueBacklog", "added", ()),
        ("OutputTokensPerTaskHigh", "removed", ()),
        ("TierErrorRateHigh", "changed", ()),
        ("HeartbeatMissing", "changed", ("for",)),
    }
    assert pr.has_changes
    assert not pr.agents


def test_text_shows_the_compiled_expressions(pr: FleetDiff) -> None:
    text = render_text(pr)
    section = text[text.index("Alerts (Prometheus rules, no agent rollout):") :]
    assert "  + QueueBacklog  (alerts/health.yaml)\n      agent:queue_depth > 500\n" in section
    assert "  - OutputTokensPerTaskHigh  (alerts/cost.yaml)\n" in section
    assert (
        "  ~ TierErrorRateHigh  (alerts/health.yaml)\n"
        "      was: tier:error_rate:rate5m > 0.03\n"
        "      now: tier:error_rate:rate5m > 0.05\n"
    ) in section
    assert "  ~ HeartbeatMissing  (alerts/health.yaml)  [for]\n" in section
    assert "Alerts: 4 alert rules added, removed or changed." in text


def test_markdown_and_json_have_the_section(pr: FleetDiff) -> None:
    md = render_markdown(pr)
    assert "#### Alerts (Prometheus rules, no agent rollout)" in md
    assert (
        "| `TierErrorRateHigh` (`alerts/health.yaml`) | changed | "
        "`tier:error_rate:rate5m > 0.03` → `tier:error_rate:rate5m > 0.05` |"
    ) in md
    doc = json.loads(render_json(pr))
    assert doc["summary"]["alerts"] == 4
    added = next(a for a in doc["diff"]["alerts"] if a["name"] == "QueueBacklog")
    assert added == {
        "name": "QueueBacklog",
        "kind": "added",
        "file": "alerts/health.yaml",
        "old_expr": None,
        "new_expr": "agent:queue_depth > 500",
        "fields": [],
    }


def test_no_alert_change_no_section(example_repo: Repo) -> None:
    same = diff_repos(example_repo, example_repo)
    assert same.alerts == ()
    assert "Alerts" not in render_text(same)


def test_live_mode_compares_with_the_loaded_rules(example_repo: Repo) -> None:
    loaded = dict(compile_alerts(example_repo).expressions)
    loaded["MemoryNearLimit"] = "agent:memory_use_ratio  >  0.9"
    loaded["Retired"] = "up == 0"
    del loaded["AgentStalled"]
    live = diff_live(example_repo, [], live_alerts=loaded)
    assert {(c.name, c.kind) for c in live.alerts} == {
        ("MemoryNearLimit", "changed"),
        ("Retired", "removed"),
        ("AgentStalled", "added"),
    }
    assert diff_live(example_repo, []).alerts == ()
