"""Pull-request cost estimates from a real Prometheus: the one the BASE revision names.

Six demo boxes (three in tier fast) at 50 tasks/s, scraped each second. The base revision
names the Prometheus and keeps tier fast on what the boxes run (claude-haiku-4); the head
upgrades it to claude-haiku-4-5. The figure must come from Prometheus (not usage.yaml) and
agree with the configured rate times the price table within 25 % (rate() over 5 s of 1 s
scrapes).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from reconciler.app.diff import DiffRequest, diff
from reconciler.config.repo import load_repo
from reconciler.demo.fleet import DemoFleet
from reconciler.demo.workload import behaviour
from reconciler.repo import read_work_tree

from .conftest import Prom

RATE = 50.0  # the fleet fixture's tasks/s per agent


def _commit(repo: Path, rel: str, old: str, new: str, message: str) -> str:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_pr_cost_comes_from_the_base_revisions_prometheus(
    fleet: DemoFleet, prometheus: Prom
) -> None:
    repo = fleet.repo
    _commit(repo, "agents/tier-fast.yaml", "claude-haiku-4-5", "claude-haiku-4", "fast as run")
    named = f"  prometheus_url: {prometheus.url}\n  source: scrape"
    base = _commit(repo, "fleet.yaml", "  source: scrape", named, "name the fleet's Prometheus")
    head = _commit(repo, "agents/tier-fast.yaml", "claude-haiku-4", "claude-haiku-4-5", "upgrade")
    await asyncio.sleep(5)  # five more scrapes: the 5 s window is covered

    said: list[str] = []
    got = await diff(DiffRequest(repo, base=base, head=head, cost_window_s=5), said.append)
    cost = got.diff.cost
    assert cost is not None, said
    assert cost.sources == (f"Prometheus {prometheus.url}, 5 s window",)

    loaded = load_repo(read_work_tree(repo))
    prices = loaded.fleet.prices
    assert prices is not None
    fast = [ea for ea in loaded.agents.values() if ea.agent.tier == "fast"]
    how = behaviour(fast[0].agent.config, {}, base_error_rate=0.0)

    def per_day(model: str) -> float:
        p = prices.models[model]
        per_task = (how.tokens_in * p.usd_per_mtok_in + how.tokens_out * p.usd_per_mtok_out) / 1e6
        return len(fast) * RATE * 86_400 * per_task

    assert cost.estimated == len(fast)
    assert cost.now_per_day == pytest.approx(per_day("claude-haiku-4"), rel=0.25)
    assert cost.new_per_day == pytest.approx(per_day("claude-haiku-4-5"), rel=0.25)
