"""An agent's Prometheus text, parsed into a snapshot; two snapshots into rates. Pure: no I/O.

`parse_exposition(text, at=..., agent=...)` reads the exposition (with
prometheus_client's parser) into a `MetricSnapshot` of the series the box
contract names (model/box.py METRIC_*), keyed by sample name, so the parser's
habit of stripping `_total` from counter *family* names does not matter.
Series of one name that differ in other labels are summed (a counter split by
model is still one counter; task_errors_total summed over every `reason`); the
reason="auth" share of task_errors_total is also kept, under AUTH_ERRORS.

`rates(before, after)` turns two snapshots of one agent into `MetricRates`:
throughput, error rate, cost and tokens per task, and p95 latency from the
histogram bucket deltas (linear interpolation within the bucket, as
Prometheus' histogram_quantile does). When the data cannot give a true number
(a counter reset, NaN/Inf/negative values, a missing series, no time elapsed,
no task finished, buckets that changed) it returns a `Problem` with the reason,
never a wrong number: gates fail closed on it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from reconciler.model.box import (
    ERROR_REASON_AUTH,
    LABEL_ERROR_REASON,
    METRIC_ARRIVALS,
    METRIC_COST,
    METRIC_LATENCY,
    METRIC_MEMORY,
    METRIC_QUEUE,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
)

COUNTERS = (METRIC_TASKS, METRIC_TASK_ERRORS, METRIC_TOKENS_IN, METRIC_TOKENS_OUT, METRIC_COST)
GAUGES = (METRIC_MEMORY, METRIC_QUEUE)
BUCKET = f"{METRIC_LATENCY}_bucket"
HIST_COUNT = f"{METRIC_LATENCY}_count"
HIST_SUM = f"{METRIC_LATENCY}_sum"
AUTH_ERRORS = f'{METRIC_TASK_ERRORS}{{{LABEL_ERROR_REASON}="{ERROR_REASON_AUTH}"}}'
"""The values key of the reason="auth" share of task_errors_total (absent: not exported)."""
P95 = 0.95


class Reason(enum.StrEnum):
    """Why there is no number."""

    UNPARSEABLE = "unparseable"
    AMBIGUOUS_AGENT = "ambiguous-agent"
    MISSING_SERIES = "missing-series"
    INVALID_VALUE = "invalid-value"
    COUNTER_RESET = "counter-reset"
    NO_ELAPSED_TIME = "no-elapsed-time"
    NO_TASKS = "no-tasks"
    BUCKETS_CHANGED = "buckets-changed"


@dataclass(frozen=True, slots=True)
class Problem:
    """Insufficient or invalid data: the reason, and what exactly was wrong."""

    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class MetricSnapshot:
    """The contract's series of one agent at one scrape time (None: series absent)."""

    agent: str | None
    at: float  # scrape time, seconds (any epoch; only differences matter)
    values: Mapping[str, float]  # sample name (counters, gauges, histogram _sum/_count) -> value
    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), sorted; +Inf included

    def get(self, name: str) -> float | None:
        return self.values.get(name)


@dataclass(frozen=True, slots=True)
class MetricRates:
    """What one agent did between two scrapes."""

    elapsed_s: float
    samples: int  # tasks finished in the window
    tasks_per_s: float
    error_rate: float  # failed / finished
    cost_per_task: float
    tokens_per_task: float  # in + out
    output_tokens_per_task: float
    tokens_per_s: float
    latency_p95_s: float
    latency_samples: int
    memory_bytes: float | None  # latest gauge values, when exported
    queue_depth: float | None


def parse_exposition(text: str, *, at: float, agent: str | None = None) -> MetricSnapshot | Problem:
    """The snapshot of `agent` (or of the only agent in the text) scraped at `at`."""
    values: dict[str, float] = {}
    buckets: dict[float, float] = {}
    agents: set[str] = set()
    wanted = {*COUNTERS, *GAUGES, HIST_COUNT, HIST_SUM, METRIC_ARRIVALS}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                who = s.labels.get("agent")
                if who is not None:
                    agents.add(who)
                if agent is not None and who is not None and who != agent:
                    continue
                if s.name == BUCKET:
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + float(s.value)
                elif s.name in wanted:
                    values[s.name] = values.get(s.name, 0.0) + float(s.value)
                    if s.name == METRIC_TASK_ERRORS and (
                        s.labels.get(LABEL_ERROR_REASON) == ERROR_REASON_AUTH
                    ):
                        values[AUTH_ERRORS] = values.get(AUTH_ERRORS, 0.0) + float(s.value)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return Problem(Reason.UNPARSEABLE, f"not Prometheus text exposition: {exc}")
    if agent is None and len(agents) > 1:
        return Problem(Reason.AMBIGUOUS_AGENT, f"series of {len(agents)} agents; name one")
    if agent is not None and agents and agent not in agents:
        return Problem(Reason.MISSING_SERIES, f"no series for agent {agent!r}")
    name = agent if agent is not None else next(iter(agents), None)
    return MetricSnapshot(name, at, values, tuple(sorted(buckets.items())))


def _bad(x: float) -> bool:
    return math.isnan(x) or math.isinf(x) or x < 0


def histogram_quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets; None without data."""
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    i = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if i == len(buckets) - 1:
        # In the +Inf bucket: Prometheus answers the highest finite bound.
        return buckets[-2][0] if len(buckets) > 1 else None
    upper, count = buckets[i]
    lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
    if i == 0 and upper <= 0:
        return upper
    in_bucket = count - below
    return lower + (upper - lower) * ((rank - below) / in_bucket)


def _delta_buckets(
    before: MetricSnapshot, after: MetricSnapshot
) -> tuple[tuple[float, float], ...] | Problem:
    if not after.buckets or not math.isinf(after.buckets[-1][0]):
        return Problem(Reason.MISSING_SERIES, f"{BUCKET} with le=+Inf")
    if [le for le, _ in before.buckets] != [le for le, _ in after.buckets]:
        return Problem(Reason.BUCKETS_CHANGED, f"{METRIC_LATENCY} bucket bounds differ")
    deltas = []
    prev = 0.0
    for (le, b), (_, a) in zip(before.buckets, after.buckets, strict=True):
        if _bad(a) or _bad(b):
            return Problem(Reason.INVALID_VALUE, f"{BUCKET}{{le={le}}} is {a if _bad(a) else b}")
        if a < b:
            return Problem(Reason.COUNTER_RESET, f"{BUCKET}{{le={le}}} fell from {b} to {a}")
        d = a - b
        if d < prev:
            return Problem(Reason.INVALID_VALUE, f"{BUCKET} not cumulative at le={le}")
        deltas.append((le, d))
        prev = d
    return tuple(deltas)


def rates(before: MetricSnapshot, after: MetricSnapshot) -> MetricRates | Problem:
    """Rates between two snapshots of one agent, or the Problem that prevents them."""
    elapsed = after.at - before.at
    if not math.isfinite(elapsed) or elapsed <= 0:
        return Problem(Reason.NO_ELAPSED_TIME, f"scrapes {elapsed:g}s apart")
    missing = [n for n in COUNTERS if before.get(n) is None or after.get(n) is None]
    if missing:
        return Problem(Reason.MISSING_SERIES, ", ".join(missing))
    d: dict[str, float] = {}
    for n in COUNTERS:
        b, a = before.values[n], after.values[n]
        if _bad(a) or _bad(b):
            return Problem(Reason.INVALID_VALUE, f"{n} is {a if _bad(a) else b}")
        if a < b:
            return Problem(Reason.COUNTER_RESET, f"{n} fell from {b:g} to {a:g}")
        d[n] = a - b
    tasks = d[METRIC_TASKS]
    if tasks == 0:
        return Problem(Reason.NO_TASKS, f"no task finished in {elapsed:g}s")
    if d[METRIC_TASK_ERRORS] > tasks:
        return Problem(
            Reason.INVALID_VALUE, f"{d[METRIC_TASK_ERRORS]:g} errors but {tasks:g} tasks"
        )
    hist = _delta_buckets(before, after)
    if isinstance(hist, Problem):
        return hist
    p95 = histogram_quantile(P95, hist)
    if p95 is None:
        return Problem(Reason.NO_TASKS, f"no {METRIC_LATENCY} observation in the window")
    tokens = d[METRIC_TOKENS_IN] + d[METRIC_TOKENS_OUT]
    gauges = {n: after.get(n) for n in GAUGES}
    for n, v in gauges.items():
        if v is not None and _bad(v):
            gauges[n] = None  # a broken gauge is reported as absent, never as a number
    return MetricRates(
        elapsed_s=elapsed,
        samples=round(tasks),
        tasks_per_s=tasks / elapsed,
        error_rate=d[METRIC_TASK_ERRORS] / tasks,
        cost_per_task=d[METRIC_COST] / tasks,
        tokens_per_task=tokens / tasks,
        output_tokens_per_task=d[METRIC_TOKENS_OUT] / tasks,
        tokens_per_s=tokens / elapsed,
        latency_p95_s=p95,
        latency_samples=round(hist[-1][1]),
        memory_bytes=gauges[METRIC_MEMORY],
        queue_depth=gauges[METRIC_QUEUE],
    )
