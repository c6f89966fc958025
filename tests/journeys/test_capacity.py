"""Journey: `reconcile capacity` against a small demo fleet whose load is known.

The demo agents get `--rate` tasks per second each (Poisson) and take, per task, the
latency their running config implies (reconciler/demo/workload.py: the model's base
latency plus its time per output token; 1% of tasks fail fast at 0.1 s). So each tier's
λ is rate x its agents, and its mean service time follows from the config the boxes run
(the demo's first commit). capacity --format json must find both within the Poisson noise
of an 8 s window, validate against schemas/capacity.schema.json, and refuse an unknown tier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from reconciler.config.repo import load_repo
from reconciler.demo.workload import behaviour
from reconciler.repo import read_revision
from reconciler.testing.journeys import Demo, run

pytestmark = pytest.mark.timeout(120)

RATE = 10.0
BASE_ERROR_RATE = 0.01  # the demo's default
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "capacity.schema.json"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    d = Demo.start(tmp_path_factory.mktemp("capacity") / "demo", 6, rate=RATE)
    try:
        yield d
    finally:
        d.stop()


def _expected_service_s(demo: Demo, agent: str) -> float:
    """The mean task latency of `agent` running the demo's first commit."""
    repo = load_repo(read_revision(demo.repo, demo.first_commit).files)
    config = repo.agents[agent].agent.config
    how = behaviour(config, dict.fromkeys(repo.secrets, "a-key"), base_error_rate=BASE_ERROR_RATE)
    return (1 - how.error_rate) * how.latency_s + how.error_rate * how.failed_latency_s


def test_capacity_finds_the_demo_rates(demo: Demo) -> None:
    tiers = sorted({a["tier"] for a in demo.info["agents"].values()})
    got = run("capacity", "--repo", demo.repo, "--window", "8s", "--format", "json", timeout=60)
    got.expect(0)
    doc = json.loads(got.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text(encoding="utf-8")))
    rows = {r["tier"]: r for r in doc["tiers"]}
    assert sorted(rows) == tiers, got.describe()
    for tier, row in rows.items():
        agents = demo.tier(tier)
        assert row["agents_running"] == len(agents)
        lam = RATE * len(agents)
        # Poisson: 8 s x 10/s x n arrivals; 35% is > 3 sigma for one agent.
        assert row["arrivals_per_s"] == pytest.approx(lam, rel=0.35), (tier, row)
        assert row["peak_arrivals_per_s"] >= row["arrivals_per_s"] * 0.9
        want_s = _expected_service_s(demo, agents[0])
        assert row["service_time_mean_s"] == pytest.approx(want_s, rel=0.2), (tier, row)
        c = row["concurrency"]
        u = row["target_utilisation"]
        used = row["service_time_used_s"]
        assert row["agents_needed"] >= 1
        assert row["agents_needed"] <= -(-row["arrivals_per_s"] * used // (c * u))
        assert row["agents_needed_with_headroom"] >= row["agents_needed"]
        assert row["verdict"].startswith(("short by", "over-provisioned by", "enough", "right"))


def test_capacity_markdown_and_unknown_tier(demo: Demo) -> None:
    tier = demo.info["agents"][demo.agents[0]]["tier"]
    md = run("capacity", "--repo", demo.repo, "--tier", tier, "--window", "2s",
             "--format", "markdown", timeout=60)  # fmt: skip
    md.expect(0, rf"\| {tier} \|", r"N = ceil")
    run("capacity", "--repo", demo.repo, "--tier", "no-such-tier", "--window", "1s").expect(
        1, "no agent of tier 'no-such-tier'"
    ).refuse("Traceback")
    run("capacity", "--repo", demo.repo, "--window", "soon").expect(1, "positive duration")
