"""Capacity sizing (pure): the worked example, the tail rule, the verdicts, observed load."""

from __future__ import annotations

import math

import pytest

from reconciler.capacity import Counters, Observed, Scrape, agents_needed, observe, size
from reconciler.capacity.report import CapacityReport, to_markdown, to_text
from reconciler.model.fleet import Capacity


def _observed(lam: float, mean: float, p95: float) -> Observed:
    return Observed(600.0, 10, lam * 600, lam, lam * 1.2, 1000.0, mean, p95)


def test_worked_example_20_agents_26_with_headroom() -> None:
    assert agents_needed(4.2, 3.1, 1, 0.65) == 20
    assert agents_needed(4.2 * 1.3, 3.1, 1, 0.65) == 26
    row = size("fast", _observed(4.2, 3.1, 4.0), concurrency=1, running=20, policy=Capacity())
    assert (row.agents_needed, row.agents_needed_with_headroom) == (20, 26)
    assert row.target_utilisation == 0.65
    assert not row.heavy_tail and row.service_time_used_s == 3.1
    assert row.verdict == "enough without headroom; short by 6 with 30% headroom"


def test_rounding_slack_is_small() -> None:
    # 0.5% above a whole number rounds down; 1% above does not.
    assert agents_needed(1.0, 10.05, 1, 1.0) == 10
    assert agents_needed(1.0, 10.1, 1, 1.0) == 11
    assert agents_needed(1.0, 10.0, 4, 0.5) == 5
    assert agents_needed(0.0, 3.0, 1, 0.65) == 0


def test_batch_class_uses_085_and_concurrency() -> None:
    policy = Capacity(tiers={"batch": "batch"})
    row = size("batch", _observed(4.2, 3.1, 4.0), concurrency=4, running=3, policy=policy)
    assert row.tier_class == "batch" and row.target_utilisation == 0.85
    assert row.agents_needed == math.ceil(4.2 * 3.1 / (4 * 0.85))  # 3.83 -> 4
    assert row.verdict.startswith("short by 1")


def test_heavy_tail_sizes_on_p95_and_says_so() -> None:
    row = size("smart", _observed(1.0, 2.0, 5.0), concurrency=1, running=50, policy=Capacity())
    assert row.heavy_tail and row.service_time_used_s == 5.0
    assert "heavy tail" in row.service_rule and "p95" in row.service_rule
    assert row.agents_needed == 8  # 1 x 5 / 0.65 = 7.7
    assert row.verdict == "over-provisioned by 40 (keeping 30% headroom)"
    assert "heavy tail" in to_text(CapacityReport(fleet_id="f", source="scrape", window_s=600,
                                                  tiers=[row]))  # fmt: skip


def test_no_tasks_sizes_nothing() -> None:
    row = size("x", Observed(10, 1, 0, 0, 0, 0, None, None), concurrency=1, running=2,
               policy=Capacity())  # fmt: skip
    assert row.agents_needed == 0 and row.verdict == "unknown"
    assert any("no task finished" in n for n in row.notes)


BUCKETS = (1.0, 2.0, 4.0, math.inf)


def _c(arrivals: float, n: float, mean: float, le_counts: tuple[float, ...]) -> Counters:
    return Counters(arrivals, n * mean, n, tuple(zip(BUCKETS, le_counts, strict=True)))


def test_observe_rates_peak_and_service_time() -> None:
    scrapes = [
        Scrape(0.0, {"a": _c(0, 0, 1, (0, 0, 0, 0)), "b": _c(100, 0, 1, (0, 0, 0, 0))}),
        Scrape(1.0, {"a": _c(2, 2, 1.5, (0, 2, 2, 2)), "b": _c(102, 0, 1, (0, 0, 0, 0))}),
        Scrape(2.0, {"a": _c(4, 4, 1.5, (0, 4, 4, 4)), "b": _c(110, 0, 1, (0, 0, 0, 0))}),
        # b restarted: its counter fell, so it is left out of this interval
        Scrape(3.0, {"a": _c(6, 6, 1.5, (0, 6, 6, 6)), "b": _c(1, 0, 1, (0, 0, 0, 0))}),
    ]
    got = observe(scrapes)
    assert got is not None
    assert got.intervals == 3 and got.span_s == 3.0
    assert got.arrivals == 6 + 2 + 8  # a: 6; b: 2, then 8, then a reset (left out)
    assert got.lambda_per_s == pytest.approx(16 / 3)
    assert got.peak_per_s == 10.0  # interval rates 4, 10, 2: p95 by nearest rank
    assert got.service_mean_s == pytest.approx(1.5)
    assert got.service_p95_s == pytest.approx(1.95)  # all in (1, 2]: 1 + 0.95


def test_observe_needs_two_scrapes() -> None:
    assert observe([Scrape(0.0, {})]) is None


def test_markdown_escapes_pipes() -> None:
    row = size("fast", _observed(4.2, 3.1, 4.0), concurrency=1, running=20, policy=Capacity())
    md = to_markdown(CapacityReport(fleet_id="f", source="scrape", window_s=600, tiers=[row]))
    assert "| fast | latency-sensitive | 20 | 1 | 4.2 |" in md
