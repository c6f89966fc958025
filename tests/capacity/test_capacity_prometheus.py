"""capacity from Prometheus (fleet.yaml metrics.source: prometheus): a real Prometheus
scraping six demo boxes (three of tier fast) at 50 tasks/s each, every second."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.app.capacity import CapacityRequest, capacity
from reconciler.demo.fleet import DemoFleet
from tests.prometheus.conftest import Prom, fleet, prometheus  # noqa: F401 (fixtures)
from tests.prometheus.test_prometheus_gates import use_prometheus

pytestmark = pytest.mark.timeout(120)


async def test_capacity_reads_prometheus(fleet: DemoFleet, prometheus: Prom) -> None:  # noqa: F811
    use_prometheus(fleet.repo, prometheus.url)
    await asyncio.sleep(6)  # eight seconds of scrapes in all
    report = await capacity(CapacityRequest(fleet.repo, tier="fast", window_s=8))
    assert report.source == "prometheus"
    (row,) = report.tiers
    n = row.agents_running
    assert n == 3
    assert row.arrivals_per_s == pytest.approx(50.0 * n, rel=0.35), row
    assert row.peak_arrivals_per_s > 0
    assert row.service_time_mean_s is not None and 0.2 < row.service_time_mean_s < 5
    assert row.service_time_p95_s is not None and row.agents_needed >= 1
