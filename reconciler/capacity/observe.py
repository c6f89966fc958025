"""Scrapes of a tier's agents -> its observed load (pure).

Each scrape holds, per agent, the arrivals counter and the latency histogram
(sum, count, cumulative buckets). Between consecutive scrapes the tier's
arrival rate is the summed increase over the agents seen in both (an agent
whose counter fell, a restart, is left out of that interval); λ is the total
increase over the total time, the peak the p95 (nearest rank) of the interval
rates. Service time comes from the latency histogram's increase over the whole
span: the mean from sum/count, the p95 from the buckets (linear interpolation
within a bucket, as Prometheus' histogram_quantile does).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Counters:
    """One agent's counters at one scrape."""

    arrivals: float
    latency_sum: float
    latency_count: float
    buckets: Buckets  # (le, cumulative count), sorted, +Inf last


@dataclass(frozen=True, slots=True)
class Scrape:
    """Every readable agent's counters at one time (seconds, any epoch)."""

    at: float
    agents: Mapping[str, Counters]


@dataclass(frozen=True, slots=True)
class Observed:
    """A tier's load over the window."""

    span_s: float
    intervals: int
    arrivals: float
    lambda_per_s: float
    peak_per_s: float
    tasks: float  # tasks finished (latency observations) in the window
    service_mean_s: float | None
    service_p95_s: float | None


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets; None without data."""
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    i = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if i == len(buckets) - 1:
        return buckets[-2][0] if len(buckets) > 1 else None
    upper, count = buckets[i]
    lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
    if count <= below:
        return upper
    return lower + (upper - lower) * ((rank - below) / (count - below))


def _grew(before: Counters, after: Counters) -> bool:
    return after.arrivals >= before.arrivals and after.latency_count >= before.latency_count


def _bucket_delta(before: Buckets, after: Buckets) -> Buckets | None:
    if [le for le, _ in before] != [le for le, _ in after]:
        return None
    return tuple((le, max(0.0, a - b)) for (le, b), (_, a) in zip(before, after, strict=True))


def observe(scrapes: Sequence[Scrape]) -> Observed | None:
    """The load the scrapes show; None with fewer than two scrapes or no time between them."""
    if len(scrapes) < 2 or scrapes[-1].at <= scrapes[0].at:
        return None
    rates: list[float] = []
    arrivals = elapsed = 0.0
    for prev, cur in itertools.pairwise(scrapes):
        dt = cur.at - prev.at
        if dt <= 0:
            continue
        got = sum(
            cur.agents[a].arrivals - c.arrivals
            for a, c in prev.agents.items()
            if a in cur.agents and _grew(c, cur.agents[a])
        )
        rates.append(got / dt)
        arrivals += got
        elapsed += dt
    first, last = scrapes[0], scrapes[-1]
    lat_sum = lat_count = 0.0
    buckets: dict[float, float] = {}
    for agent, before in first.agents.items():
        after = last.agents.get(agent)
        if after is None or not _grew(before, after):
            continue
        lat_sum += after.latency_sum - before.latency_sum
        lat_count += after.latency_count - before.latency_count
        for le, n in _bucket_delta(before.buckets, after.buckets) or ():
            buckets[le] = buckets.get(le, 0.0) + n
    mean = lat_sum / lat_count if lat_count > 0 else None
    p95 = histogram_quantile(0.95, tuple(sorted(buckets.items())))
    return Observed(
        span_s=elapsed,
        intervals=len(rates),
        arrivals=arrivals,
        lambda_per_s=arrivals / elapsed if elapsed > 0 else 0.0,
        peak_per_s=nearest_rank(rates, 0.95),
        tasks=lat_count,
        service_mean_s=mean,
        service_p95_s=p95,
    )
