"""Capacity: per tier, the load the boxes see now, and the agents it needs.

Live metrics: every agent of the chosen tiers is scraped `samples + 1` times
across the window (its arrivals counter and latency histogram); with fleet.yaml
`metrics.source: prometheus`, the same figures come from PromQL over the window
at once. The sizing itself is reconciler/capacity (pure).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.app.config import load_config
from reconciler.capacity import CapacityReport, Counters, Observed, Scrape, observe, size
from reconciler.config.repo import Repo
from reconciler.errors import Refused
from reconciler.metrics.promsource import selector
from reconciler.model.agent import Agent
from reconciler.model.box import METRIC_ARRIVALS, METRIC_LATENCY
from reconciler.transport.link import FleetLink
from reconciler.transport.metrics import BUCKET, HIST_COUNT, HIST_SUM, MetricSnapshot, Problem
from reconciler.transport.prometheus import PrometheusClient, PrometheusError


@dataclass(frozen=True, slots=True)
class CapacityRequest:
    """Which repo, which tier (None: every tier), and how long to watch."""

    repo: Path
    tier: str | None = None
    window_s: float = 600.0
    samples: int = 10


def _counters(snap: MetricSnapshot | Problem) -> Counters | None:
    if isinstance(snap, Problem):
        return None
    arrivals, lat_sum, lat_count = (snap.get(n) for n in (METRIC_ARRIVALS, HIST_SUM, HIST_COUNT))
    if arrivals is None or lat_sum is None or lat_count is None:
        return None
    return Counters(arrivals, lat_sum, lat_count, snap.buckets)


def _concurrency(agents: Sequence[Agent]) -> tuple[int, list[str]]:
    """The tier's c (its agents' most common `concurrency`), and notes when it is not plain."""
    values = [a.config.get("concurrency") for a in agents]
    good = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 1]
    notes = []
    if len(good) < len(values):
        notes.append(f"{len(values) - len(good)} agent(s) set no valid concurrency: taken as 1")
    counts = Counter(good or [1])
    c = counts.most_common(1)[0][0]
    if len(counts) > 1:
        notes.append(f"concurrency differs across the tier ({sorted(counts)}): sized with {c}")
    return c, notes


async def _scrape_windows(
    link: FleetLink, agents: Sequence[Agent], window_s: float, samples: int
) -> tuple[list[Scrape], dict[str, str]]:
    """`samples + 1` scrapes spread over the window, and why agents could not be read."""
    step = window_s / max(1, samples)
    scrapes: list[Scrape] = []
    unread: dict[str, str] = {}
    start = time.monotonic()
    for i in range(samples + 1):
        delay = start + i * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        got = await link.scrape(agents)
        at = time.monotonic()
        ok: dict[str, Counters] = {}
        for name, snap in got.items():
            c = _counters(snap)
            if c is None:
                unread[name] = (
                    str(snap)
                    if isinstance(snap, Problem)
                    else (f"no {METRIC_ARRIVALS} or {METRIC_LATENCY} series")
                )
            else:
                ok[name] = c
        scrapes.append(Scrape(at, ok))
    return scrapes, unread


async def _prometheus(
    url: str, label: str, agents: Sequence[Agent], window_s: float, scrape_s: float
) -> Observed:
    """The tier's load over the last `window_s` from Prometheus; the peak's rate steps are
    a tenth of the window, at least two scrape intervals (a rate needs two samples)."""
    sel = selector(label, [a.name for a in agents])
    w = f"{max(1, math.ceil(window_s))}s"
    step = f"{max(1, math.ceil(window_s / 10), math.ceil(2 * scrape_s))}s"
    queries = {
        "arrivals": f"sum(increase({METRIC_ARRIVALS}{sel}[{w}]))",
        "peak": "quantile_over_time(0.95, "
        f"(sum(rate({METRIC_ARRIVALS}{sel}[{step}])))[{w}:{step}])",
        "sum": f"sum(increase({HIST_SUM}{sel}[{w}]))",
        "count": f"sum(increase({HIST_COUNT}{sel}[{w}]))",
        "p95": f"histogram_quantile(0.95, sum by (le) (increase({BUCKET}{sel}[{w}])))",
    }
    client = PrometheusClient(url)
    got: dict[str, float | None] = {}
    try:
        for name, q in queries.items():
            try:
                answer = await client.instant(q)
            except PrometheusError as exc:
                raise Refused(f"Prometheus {url}: {exc}") from None
            value = answer[0][1] if answer else None
            got[name] = value if value is not None and math.isfinite(value) else None
    finally:
        await client.close()
    arrivals, lat_sum, count = got["arrivals"] or 0.0, got["sum"], got["count"]
    return Observed(
        span_s=window_s,
        intervals=10,
        arrivals=arrivals,
        lambda_per_s=arrivals / window_s,
        peak_per_s=got["peak"] or 0.0,
        tasks=count or 0.0,
        service_mean_s=lat_sum / count if lat_sum is not None and count else None,
        service_p95_s=got["p95"],
    )


def _tiers(repo: Repo, tier: str | None) -> dict[str, list[Agent]]:
    tiers: dict[str, list[Agent]] = {}
    for ea in repo.agents.values():
        tiers.setdefault(ea.agent.tier, []).append(ea.agent)
    if tier is not None:
        if tier not in tiers:
            known = ", ".join(sorted(tiers)) or "none"
            raise Refused(f"no agent of tier {tier!r} in the repo (tiers: {known})")
        tiers = {tier: tiers[tier]}
    return dict(sorted(tiers.items()))


async def capacity(req: CapacityRequest) -> CapacityReport:
    """Watch the chosen tiers for the window; size each one."""
    if not (req.window_s > 0 and math.isfinite(req.window_s)):
        raise Refused(f"--window must be a positive duration, got {req.window_s:g}s")
    repo = load_config(req.repo)
    tiers = _tiers(repo, req.tier)
    metrics = repo.fleet.metrics
    observed: dict[str, Observed | None] = {}
    notes: dict[str, list[str]] = {t: [] for t in tiers}
    if metrics.source == "prometheus" and metrics.prometheus_url:
        for t, agents in tiers.items():
            observed[t] = await _prometheus(
                metrics.prometheus_url,
                metrics.agent_label,
                agents,
                req.window_s,
                metrics.scrape_interval_s,
            )
        source = "prometheus"
    else:
        everyone = [a for agents in tiers.values() for a in agents]
        async with FleetLink(repo.fleet.connection, req.repo.resolve()) as link:
            scrapes, unread = await _scrape_windows(link, everyone, req.window_s, req.samples)
        for t, agents in tiers.items():
            names = {a.name for a in agents}
            mine = [
                Scrape(s.at, {n: c for n, c in s.agents.items() if n in names}) for s in scrapes
            ]
            observed[t] = observe(mine)
            missed = sorted(n for n in unread if n in names)
            if missed:
                notes[t].append(
                    f"{len(missed)} agent(s) not read, left out of the load: "
                    + "; ".join(f"{n}: {unread[n]}" for n in missed[:5])
                    + (" ..." if len(missed) > 5 else "")
                )
        source = "scrape"
    rows = []
    for t, agents in tiers.items():
        c, c_notes = _concurrency(agents)
        seen = observed[t] or Observed(req.window_s, 0, 0.0, 0.0, 0.0, 0.0, None, None)
        rows.append(
            size(
                t,
                seen,
                concurrency=c,
                running=len(agents),
                policy=repo.fleet.capacity,
                notes=(*c_notes, *notes[t]),
            )
        )
    spans = [r.window_s for r in rows if r.window_s > 0]
    window = statistics.median(spans) if spans else req.window_s
    return CapacityReport(
        fleet_id=repo.fleet.fleet_id, source=source, window_s=round(window, 3), tiers=rows
    )
