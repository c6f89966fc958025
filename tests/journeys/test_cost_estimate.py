"""Journey: the demo's headline change (tier fast: claude-haiku-4 -> claude-haiku-4-5) shows a
dollar figure, live and in pull-request mode, that agrees with the demo's configured task rate
times fleet.yaml's price table.

The expected figure is worked out here independently of diff/cost.py: agents x rate x 86,400
s x (input tokens x input price + output tokens x output price) / 1e6, tokens per task as the
demo agents draw them from tier fast's config (demo/workload.py), prices from the repo's
fleet.yaml. Live mode measures 5 s of the boxes' metrics at 40 tasks/s per agent (about 200
tasks per box: the count's noise is a few per cent), so the tolerance is 15 %; pull-request
mode reads usage.yaml, which the demo wrote from the same rate, so it agrees within 2 %.
"""

from __future__ import annotations

import json

import pytest

from reconciler.config.repo import load_repo
from reconciler.demo.workload import behaviour
from reconciler.repo import read_work_tree
from reconciler.testing.journeys import Demo, demo_fleet

RATE = 40.0  # tasks/s per agent
AGENTS = 6  # three in tier fast, three in tier smart


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("cost") / "demo", AGENTS, rate=RATE) as fleet:
        fleet.wait_alive()
        yield fleet


def _expected(demo: Demo) -> tuple[float, float]:
    """Tier fast's USD/day on claude-haiku-4 and on claude-haiku-4-5 at the configured rate."""
    repo = load_repo(read_work_tree(demo.repo))
    prices = repo.fleet.prices
    assert prices is not None and prices.example, "the demo's repo has the example price table"
    fast = [ea for ea in repo.agents.values() if ea.agent.tier == "fast"]
    how = behaviour(fast[0].agent.config, {}, base_error_rate=0.0)

    def per_day(model: str) -> float:
        p = prices.models[model]
        per_task = (how.tokens_in * p.usd_per_mtok_in + how.tokens_out * p.usd_per_mtok_out) / 1e6
        return len(fast) * RATE * 86_400 * per_task

    return per_day("claude-haiku-4"), per_day("claude-haiku-4-5")


def test_live_diff_prices_the_model_upgrade_from_the_boxes_metrics(demo: Demo) -> None:
    """`reconcile diff` against the running fleet: old -> new $/day and $/month for tier fast,
    from 5 s of live metrics, labelled with its source, window and 'example prices'."""
    now, new = _expected(demo)
    got = demo.reconcile("diff", "--format", "json", "--cost-window", "5").expect(0)
    cost = json.loads(got.stdout)["diff"]["cost"]
    assert cost["now_per_day"] == pytest.approx(now, rel=0.15), got.describe()
    assert cost["new_per_day"] == pytest.approx(new, rel=0.15), got.describe()
    assert cost["delta_per_day"] == pytest.approx(new - now, rel=0.2), got.describe()
    assert cost["delta_per_month"] == pytest.approx(cost["delta_per_day"] * 730 / 24)
    assert cost["estimated"] == len(demo.tier("fast"))
    assert cost["sources"] == ["live metrics of each box (scrape), 5 s window"]
    assert cost["prices"] == "example prices dated 2026-11-01"


def test_pr_diff_prices_the_model_upgrade_from_usage_yaml(demo: Demo) -> None:
    """`reconcile diff --base FIRST --head HEAD`: no fleet contact; the demo's usage.yaml
    (its configured rate) times the table, in markdown with its source."""
    now, new = _expected(demo)
    args = ("diff", "--base", demo.first_commit, "--head", demo.head_commit)
    cost = json.loads(demo.reconcile(*args, "--format", "json").expect(0).stdout)["diff"]["cost"]
    assert cost["now_per_day"] == pytest.approx(now, rel=0.02)
    assert cost["new_per_day"] == pytest.approx(new, rel=0.02)
    assert cost["sources"] == [
        f"usage.yaml tier fast, the demo's configured rate, {RATE:g} tasks/s per agent"
    ]
    md = demo.reconcile(*args, "--format", "markdown").expect(0, r"\| per day \|", r"per month")
    md.expect(0, "usage.yaml tier fast", "example prices dated")
