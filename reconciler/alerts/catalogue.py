"""The alert metric catalogue: each metric of model/fleet.py ALERT_METRICS as PromQL.

Series carry the box contract's `agent` label and the scrape config's `tier` and `shard`
target labels. A metric is computed at a level: per agent (every label but instance,
job and an error's reason), per tier, per shard or over the fleet. Windowed metrics
(rates, histograms) take a window; gauges are read as they are, or averaged over a
window for a rolling baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from reconciler.model.box import (
    METRIC_ARRIVALS,
    METRIC_COST,
    METRIC_HEARTBEAT,
    METRIC_LATENCY,
    METRIC_MEMORY,
    METRIC_MEMORY_LIMIT,
    METRIC_QUEUE,
    METRIC_TASK_COST,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
)
from reconciler.model.fleet import AlertLevel

_DROP: Final = "instance, job"


def _sum(level: AlertLevel, extra: str = "") -> str:
    """The aggregation of counters at a level (`extra`: a label kept too, e.g. le)."""
    if level == "agent":
        drop = f"{_DROP}, reason" if not extra else _DROP
        return f"sum without ({drop})"
    keep = {"tier": "tier", "shard": "shard", "fleet": ""}[level]
    labels = ", ".join(x for x in (keep, extra) if x)
    return f"sum by ({labels})"


def _max(level: AlertLevel) -> str:
    if level == "agent":
        return f"max without ({_DROP})"
    return f"max by ({ {'tier': 'tier', 'shard': 'shard', 'fleet': ''}[level] })"


@dataclass(frozen=True, slots=True)
class Query:
    """Where a metric's expression is built: level, matchers, window (None: instant)."""

    level: AlertLevel
    matchers: str  # `{tier="fast"}` or ""
    window: str | None

    def rate(self, counter: str) -> str:
        return f"rate({counter}{self.matchers}[{self.window}])"

    def gauge(self, name: str) -> str:
        if self.window is None:
            return f"{name}{self.matchers}"
        return f"avg_over_time({name}{self.matchers}[{self.window}])"


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One catalogue metric: what it means, its unit, and its PromQL at a level."""

    name: str
    unit: str
    help: str
    windowed: bool  # rates and histograms need a window; gauges do not
    expr: Callable[[Query], str]


def _ratio(num: str, den: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        s = _sum(q.level)
        return f"{s} ({q.rate(num)}) / {s} ({q.rate(den)})"

    return build


def _per_minute(*counters: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        return f"{_sum(q.level)} ({' + '.join(q.rate(c) for c in counters)}) * 60"

    return build


def _p95(histogram: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        return f"histogram_quantile(0.95, {_sum(q.level, 'le')} ({q.rate(histogram + '_bucket')}))"

    return build


def _throughput(q: Query) -> str:
    return f"{_sum(q.level)} ({q.rate(METRIC_TASKS)})"


def _memory_ratio(q: Query) -> str:
    return f"{_max(q.level)} ({q.gauge(METRIC_MEMORY)} / {q.gauge(METRIC_MEMORY_LIMIT)})"


def _heartbeat_age(q: Query) -> str:
    return f"{_max(q.level)} (time() - {q.gauge(METRIC_HEARTBEAT)})"


def _gauge(name: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        return f"{_max(q.level)} ({q.gauge(name)})"

    return build


CATALOGUE: Final[dict[str, MetricDef]] = {
    m.name: m
    for m in (
        MetricDef("throughput", "tasks/s", "Tasks processed per second.", True, _throughput),
        MetricDef(
            "arrivals_per_minute",
            "tasks/min",
            "Tasks arriving per minute.",
            True,
            _per_minute(METRIC_ARRIVALS),
        ),
        MetricDef(
            "error_rate",
            "ratio",
            "Failed tasks / tasks (every error reason).",
            True,
            _ratio(METRIC_TASK_ERRORS, METRIC_TASKS),
        ),
        MetricDef("latency_p95", "s", "95th percentile task latency.", True, _p95(METRIC_LATENCY)),
        MetricDef(
            "tokens_per_minute",
            "tokens/min",
            "Model tokens (input + output) per minute.",
            True,
            _per_minute(METRIC_TOKENS_IN, METRIC_TOKENS_OUT),
        ),
        MetricDef(
            "cost_per_task",
            "USD",
            "Mean model cost per task.",
            True,
            _ratio(METRIC_COST, METRIC_TASKS),
        ),
        MetricDef(
            "cost_per_task_p95",
            "USD",
            "95th percentile model cost of one task.",
            True,
            _p95(METRIC_TASK_COST),
        ),
        MetricDef(
            "output_tokens_per_task",
            "tokens",
            "Mean model output tokens per task.",
            True,
            _ratio(METRIC_TOKENS_OUT, METRIC_TASKS),
        ),
        MetricDef(
            "memory_use_ratio",
            "ratio",
            "Resident memory / the agent's memory limit.",
            False,
            _memory_ratio,
        ),
        MetricDef(
            "heartbeat_age_seconds",
            "s",
            "Seconds since the agent's last heartbeat.",
            False,
            _heartbeat_age,
        ),
        MetricDef("queue_depth", "tasks", "Tasks waiting.", False, _gauge(METRIC_QUEUE)),
        MetricDef("memory_bytes", "bytes", "Resident memory.", False, _gauge(METRIC_MEMORY)),
    )
}


def record_name(metric: str, level: AlertLevel, window: str) -> str:
    """The recording rule's series name, e.g. agent:error_rate:rate5m."""
    suffix = f":rate{window}" if CATALOGUE[metric].windowed else ""
    return f"{level}:{metric}{suffix}"


def expression(metric: str, level: AlertLevel, matchers: str, window: str | None) -> str:
    """The metric's PromQL at `level`, over `window` (None: the instant value of a gauge)."""
    m = CATALOGUE[metric]
    return m.expr(Query(level, matchers, window if (m.windowed or window) else None))
