"""Windows: what one agent did over a stretch of time, and whether a gate can use it. Pure.

An `AgentWindow` holds counter increases (tasks, errors and their auth share, tokens, cost) and the
cumulative latency buckets of one agent between two instants; `AgentInfo` says
where the agent sits (tier, shard, pre-change config), which is what a
baseline is matched on. `window_problem` names the first reason a window is
unusable (a gate given one is INCONCLUSIVE, never a pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

MEAN_METRICS: Final = ("cost_per_task", "tokens_per_task", "output_tokens_per_task")
COUNTERS: Final = ("tasks", "errors", "tokens_in", "tokens_out", "cost")

Buckets = tuple[tuple[float, float], ...]  # cumulative latency buckets: (le, count), +Inf last


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Where an agent sits: what a baseline is matched on."""

    name: str
    tier: str
    shard: str
    cohort: str = ""  # what it ran before the change (its config sha): peers share it


@dataclass(frozen=True, slots=True)
class AgentWindow:
    """What one agent did between `start` and `end` (counter increases; seconds, any epoch)."""

    agent: str
    start: float
    end: float
    tasks: float
    errors: float
    tokens_in: float
    tokens_out: float
    cost: float
    buckets: Buckets = ()  # latency: (le, cumulative count), +Inf last
    last_sample_at: float | None = None  # newest underlying sample; None: `end`
    custom: Mapping[str, float] = field(default_factory=dict)  # custom gate name -> value
    auth_errors: float | None = None  # of `errors`, those refused a credential; None: not known

    @property
    def elapsed(self) -> float:
        return self.end - self.start

    @property
    def latency_samples(self) -> float:
        """Tasks with a latency observation (the +Inf bucket's count; 0 without buckets)."""
        return self.buckets[-1][1] if self.buckets else 0.0

    def total(self, metric: str) -> float:
        """The numerator of a per-task mean metric."""
        if metric == "cost_per_task":
            return self.cost
        if metric == "tokens_per_task":
            return self.tokens_in + self.tokens_out
        if metric == "output_tokens_per_task":
            return self.tokens_out
        raise ValueError(f"{metric} is not a per-task mean")


def _is_count(x: float) -> bool:
    """A usable counter increase: a finite, non-negative number."""
    return isinstance(x, int | float) and math.isfinite(x) and x >= 0


def window_problem(
    w: AgentWindow, *, agent: str, now: float | None = None, stale_after_s: float | None = None
) -> str | None:
    """Why the window cannot be used for `agent` (None: it can).

    `now` and `stale_after_s` are values (no clock is read here): with both, a
    window whose newest sample is older than `stale_after_s` at `now` is stale.
    """
    if w.agent != agent:
        return f"series of agent {w.agent!r} returned for {agent!r}"
    if not (math.isfinite(w.start) and math.isfinite(w.end)) or w.end <= w.start:
        return f"no time elapsed in the window ({w.start:g} .. {w.end:g})"
    return (
        _counter_problem(w)
        or _bucket_problem(w.buckets)
        or _custom_problem(w.custom)
        or _staleness_problem(w, now, stale_after_s)
    )


def _counter_problem(w: AgentWindow) -> str | None:
    for name in COUNTERS:
        value = getattr(w, name)
        if not _is_count(value):
            return f"{name} is {value} (NaN, infinite or negative)"
    if w.errors > w.tasks:
        return f"{w.errors:g} errors but only {w.tasks:g} tasks"
    if w.auth_errors is not None and not (_is_count(w.auth_errors) and w.auth_errors <= w.errors):
        return f"auth errors {w.auth_errors} (NaN, negative or above the {w.errors:g} errors)"
    return None


def _bucket_problem(buckets: Buckets) -> str | None:
    below = 0.0
    for le, count in buckets:
        if not _is_count(count) or count < below:
            return f"latency bucket le={le:g} is {count} (invalid or not cumulative)"
        below = count
    if buckets and not math.isinf(buckets[-1][0]):
        return "latency buckets lack le=+Inf"
    return None


def _custom_problem(custom: Mapping[str, float]) -> str | None:
    for name, value in custom.items():
        if not math.isfinite(value):
            return f"custom value {name} is {value}"
    return None


def _staleness_problem(
    w: AgentWindow, now: float | None, stale_after_s: float | None
) -> str | None:
    newest = w.last_sample_at if w.last_sample_at is not None else w.end
    if now is not None and stale_after_s is not None and now - newest > stale_after_s:
        return f"newest sample is {now - newest:.0f}s old (stale after {stale_after_s:g}s)"
    return None


def merge_buckets(windows: Iterable[AgentWindow]) -> Buckets:
    """The cumulative buckets of several windows added up (bounds must agree)."""
    total: dict[float, float] = {}
    for w in windows:
        for le, count in w.buckets:
            total[le] = total.get(le, 0.0) + count
    return tuple(sorted(total.items()))
