"""Capacity planning (pure): how many agents a tier needs for the load it sees.

`observe` turns scrapes of a tier's arrivals counter and latency histogram into
the load (λ, peak arrivals, mean and p95 service time); `size` turns the load
into N = ceil(λ·s / (c·U)) with and without headroom, against the agents running.
"""

from reconciler.capacity.observe import Counters, Observed, Scrape, observe
from reconciler.capacity.report import CapacityReport, TierCapacity
from reconciler.capacity.size import agents_needed, size

__all__ = [
    "CapacityReport",
    "Counters",
    "Observed",
    "Scrape",
    "TierCapacity",
    "agents_needed",
    "observe",
    "size",
]
