"""Cost in dollars: the price table times traffic (diff/cost.py, metrics/usage.py), by hand.

Every figure here is worked out on paper: tasks/day x (input tokens x input price + output
tokens x output price) / 1e6, a month of 730 hours.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.app.diff import DiffRequest, diff
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import diff_repos
from reconciler.diff.cost import (
    MONTH_DAYS,
    Traffic,
    cost_per_day,
    estimate,
    fleet_total,
    usage_traffic,
)
from reconciler.diff.model import AgentStatus, ChangeKind, FieldChange
from reconciler.gates import AgentWindow
from reconciler.metrics.usage import shown_url, window_traffic
from reconciler.model.fleet import ModelPrice, Prices
from reconciler.report import render_json, render_markdown, render_text

from .conftest import EXAMPLE, Edit

PRICES = Prices(
    dated="2026-11-01",
    example=True,
    models={
        "small": ModelPrice(usd_per_mtok_in=1.0, usd_per_mtok_out=5.0),
        "big": ModelPrice(usd_per_mtok_in=3.0, usd_per_mtok_out=15.0),
    },
)
# 1,000 tasks a day of 400 input and 200 output tokens: small costs $1.40/day, big $4.20/day.
TRAFFIC = Traffic(
    source="test traffic, 1 d window",
    tasks_per_day=1000,
    tokens_in_per_task=400,
    tokens_out_per_task=200,
)


def _model(old: str, new: str) -> FieldChange:
    return FieldChange(
        path=("model",), kind=ChangeKind.CHANGED, old=old, new=new, cost_impacting=True
    )


def test_cost_per_day_is_tasks_times_tokens_times_price() -> None:
    """1000 x (400 x $1 + 200 x $5) / 1e6 = $1.40."""
    assert cost_per_day(TRAFFIC, PRICES.models["small"]) == pytest.approx(1.40)
    assert cost_per_day(Traffic(source="x", usd_per_day=3.0), PRICES.models["small"]) is None


def test_model_change_is_old_to_new_per_day_and_month_with_source_and_prices() -> None:
    """small -> big at the same traffic: $1.40 -> $4.20/day, +$2.80; a month is 730 h."""
    cost = estimate(
        AgentStatus.CHANGED, [_model("small", "big")], TRAFFIC, PRICES,
        old_model="small", new_model="big",
    )  # fmt: skip
    assert cost is not None
    assert cost.now_per_day == pytest.approx(1.40)
    assert cost.new_per_day == pytest.approx(4.20)
    assert cost.delta_per_day == pytest.approx(2.80)
    assert cost.delta_per_month == pytest.approx(2.80 * 730 / 24)
    assert cost.ratio == pytest.approx(3.0)
    assert cost.source == "test traffic, 1 d window"
    assert cost.prices == "example prices dated 2026-11-01"
    assert "small $1.40/day → big $4.20/day" in cost.note


def test_measured_spend_alone_scales_by_the_price_ratio() -> None:
    """Only a USD/day (--costs): the new figure is it times the price ratio."""
    cost = estimate(
        AgentStatus.CHANGED, [_model("small", "big")], Traffic(source="--costs", usd_per_day=2.0),
        PRICES, old_model="small", new_model="big",
    )  # fmt: skip
    assert cost is not None
    assert (cost.now_per_day, cost.new_per_day, cost.delta_per_day) == (2.0, 6.0, 4.0)


def test_unpriced_model_is_named_with_the_file_to_add_it_to() -> None:
    """A model the table lacks: no figure, the model named, fleet.yaml `prices.models`."""
    cost = estimate(
        AgentStatus.CHANGED, [_model("small", "huge")], TRAFFIC, PRICES,
        old_model="small", new_model="huge",
    )  # fmt: skip
    assert cost is not None
    assert cost.delta_per_day is None
    assert cost.missing_models == ("huge",)
    assert "model huge not in the price table: add it to fleet.yaml `prices.models`" in cost.note


def test_no_price_table_and_traffic_changing_fields_give_no_figure() -> None:
    """Without a table: say where to add one. max_tokens alone: named, never guessed."""
    no_table = estimate(
        AgentStatus.CHANGED, [_model("small", "big")], TRAFFIC, None,
        old_model="small", new_model="big",
    )  # fmt: skip
    assert no_table is not None and no_table.delta_per_day is None
    assert "add `prices:` to fleet.yaml" in no_table.note
    tokens = FieldChange(
        path=("max_tokens",), kind=ChangeKind.CHANGED, old=512, new=2048, cost_impacting=True
    )
    limit = estimate(
        AgentStatus.CHANGED, [tokens], TRAFFIC, PRICES, old_model="small", new_model="small"
    )
    assert limit is not None and limit.delta_per_day is None
    assert limit.now_per_day == pytest.approx(1.40)
    assert "max_tokens not estimated" in limit.note


def test_added_and_removed_agents_cost_their_whole_figure() -> None:
    """A removed agent saves its cost; a new one with usage costs its tier's traffic."""
    gone = estimate(AgentStatus.REMOVED, [], TRAFFIC, PRICES, old_model="big")
    assert gone is not None
    assert (gone.now_per_day, gone.new_per_day) == (pytest.approx(4.20), 0.0)
    new = estimate(AgentStatus.ADDED, [], TRAFFIC, PRICES, new_model="small")
    assert new is not None and new.delta_per_day == pytest.approx(1.40)
    blind = estimate(AgentStatus.ADDED, [], None, PRICES, new_model="small")
    assert blind is not None and blind.delta_per_day is None


def test_fleet_total_sums_figures_and_counts_those_without() -> None:
    """Two agents with figures are summed; one without is counted, not guessed."""
    one = estimate(
        AgentStatus.CHANGED, [_model("small", "big")], TRAFFIC, PRICES,
        old_model="small", new_model="big",
    )  # fmt: skip
    none = estimate(
        AgentStatus.CHANGED, [_model("small", "huge")], TRAFFIC, PRICES,
        old_model="small", new_model="huge",
    )  # fmt: skip
    t = fleet_total([one, one, none])
    assert t is not None
    assert (t.now_per_day, t.new_per_day) == (pytest.approx(2.80), pytest.approx(8.40))
    assert t.new_per_month == pytest.approx(8.40 * MONTH_DAYS)
    assert (t.estimated, t.without, t.missing_models) == (2, 1, ("huge",))
    assert fleet_total([none]) is None


def test_a_metrics_window_becomes_a_days_traffic() -> None:
    """50 tasks, 20,000/10,000 tokens and $0.05 in 5 s: 864,000 tasks/day of 400/200."""
    w = AgentWindow(
        agent="a", start=100.0, end=105.0, tasks=50, errors=0, tokens_in=20_000,
        tokens_out=10_000, cost=0.05,
    )  # fmt: skip
    t = window_traffic(w, "live metrics")
    assert t is not None
    assert t.source == "live metrics, 5 s window"
    assert t.tasks_per_day == pytest.approx(864_000)
    assert (t.tokens_in_per_task, t.tokens_out_per_task) == (400, 200)
    assert t.usd_per_day == pytest.approx(864.0)


def test_pr_mode_prices_the_example_model_upgrade_from_usage_yaml(
    example_files: dict[str, bytes], edit: Edit
) -> None:
    """The example's usage.yaml: tier fast 40,000 tasks/day of 420 in / 150 out per agent,
    120 agents; haiku-4-5 ($1/$5) -> sonnet-4-5 ($3/$15): $46.80 -> $140.40 per agent a
    day; every format shows the figures, their source and 'example prices'."""
    base = load_repo(example_files)
    head: Repo = load_repo(
        edit(example_files, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5")
    )
    assert base.usage is not None
    traffic = usage_traffic(base.usage, {n: ea.agent.tier for n, ea in base.agents.items()})
    d = diff_repos(base, head, traffic=traffic)
    assert d.cost is not None
    assert d.cost.now_per_day == pytest.approx(120 * 46.80)
    assert d.cost.new_per_day == pytest.approx(120 * 140.40)
    assert d.cost.delta_per_month == pytest.approx(120 * 93.60 * 730 / 24)
    text, markdown, doc = render_text(d), render_markdown(d), render_json(d)
    for out in (text, markdown):
        assert "$5,616.00" in out and "$16,848.00" in out
        assert "usage.yaml tier fast, 30-day mean per agent, 2026-10" in out
        assert "example prices dated 2026-11-01" in out
    assert "+$11,232.00" in markdown and "+$341,640.00" in markdown
    assert json.loads(doc)["diff"]["cost"]["delta_per_day"] == pytest.approx(11_232.0)


def test_pr_mode_never_asks_the_heads_prometheus(tmp_path: Path) -> None:
    """A head that names a Prometheus (a pull request could point it anywhere) is not asked:
    the base names none, so the figure comes from usage.yaml, and nothing is contacted."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    for rel, old, new in (
        ("agents/tier-fast.yaml", "claude-haiku-4-5", "claude-sonnet-4-5"),
        (
            "fleet.yaml",
            "  source: scrape",
            "  prometheus_url: http://127.0.0.1:9\n  source: scrape",
        ),
    ):
        path = repo / rel
        path.write_text(path.read_text().replace(old, new, 1))
    subprocess.run([*git, "commit", "-qam", "head"], cwd=repo, check=True)
    said: list[str] = []
    got = asyncio.run(diff(DiffRequest(repo, base="HEAD~1"), said.append))
    assert got.diff.cost is not None
    assert got.diff.cost.sources == ("usage.yaml tier fast, 30-day mean per agent, 2026-10",)
    assert not any("Prometheus" in line for line in said), said


def test_a_prometheus_url_is_shown_without_credentials() -> None:
    """A figure's source names its Prometheus, never a user:password in its URL."""
    assert shown_url("http://u:s3cret@127.0.0.1:9090/prom") == "http://127.0.0.1:9090/prom"
    assert shown_url("http://127.0.0.1:9090") == "http://127.0.0.1:9090"
