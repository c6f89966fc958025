"""Traffic for cost estimates: each agent's tasks/day and tokens per task, from metrics.

Two ways, both read-only, both naming their source and window:

- `live_traffic`: a `MetricSource` (the box's own /metrics, or Prometheus) opened,
  left `window_s` seconds, measured: the counter increases of that window.
- `prometheus_traffic`: instant queries of a Prometheus server over a range
  (`rate(...[W])`, which counter resets do not break), for pull-request mode,
  where the server is the one the base revision's fleet.yaml names.

The arithmetic that prices them is the pure core's (diff/cost.py).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from reconciler.diff.cost import Traffic
from reconciler.gates import AgentWindow
from reconciler.metrics.promsource import selector
from reconciler.metrics.source import MetricSource, SourceError
from reconciler.model.box import METRIC_COST, METRIC_TASKS, METRIC_TOKENS_IN, METRIC_TOKENS_OUT
from reconciler.transport.prometheus import PrometheusClient, PrometheusError

DAY_S: Final = 86_400.0
RATES: Final = {
    "tasks": METRIC_TASKS,
    "tokens_in": METRIC_TOKENS_IN,
    "tokens_out": METRIC_TOKENS_OUT,
    "cost": METRIC_COST,
}


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.0f} h"


def shown_url(url: str) -> str:
    """A URL as reports may show it: any user:password@ dropped."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def per_day(
    source: str, seconds: float, tasks: float, tokens_in: float, tokens_out: float, usd: float
) -> Traffic:
    """Counter increases over `seconds` as a day's traffic (tokens per task need tasks)."""
    scale = DAY_S / seconds
    return Traffic(
        source=source,
        tasks_per_day=tasks * scale,
        tokens_in_per_task=tokens_in / tasks if tasks > 0 else None,
        tokens_out_per_task=tokens_out / tasks if tasks > 0 else None,
        usd_per_day=usd * scale,
    )


def window_traffic(w: AgentWindow, source: str) -> Traffic | None:
    """One measured window as traffic; None when no time elapsed."""
    if w.elapsed <= 0:
        return None
    label = f"{source}, {_seconds(w.elapsed)} window"
    return per_day(label, w.elapsed, w.tasks, w.tokens_in, w.tokens_out, w.cost)


async def live_traffic(
    source: MetricSource,
    agents: Sequence[str],
    window_s: float,
    *,
    label: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[dict[str, Traffic], dict[str, str]]:
    """Each agent's traffic over `window_s` seconds from now, and why not for the others.

    SourceError when the source cannot answer at all (the caller says so and goes on).
    """
    mark = await source.open(agents)
    await sleep(window_s)
    measured = await source.measure(mark, agents)
    out: dict[str, Traffic] = {}
    why: dict[str, str] = {}
    for agent, w in measured.windows.items():
        t = window_traffic(w, label) if isinstance(w, AgentWindow) else None
        if t is None:
            why[agent] = w if isinstance(w, str) else "no time elapsed in the window"
        else:
            out[agent] = t
    return out, why


async def prometheus_traffic(
    client: PrometheusClient, agents: Sequence[str], window_s: float, *, agent_label: str
) -> dict[str, Traffic]:
    """Each agent's mean traffic over the last `window_s` seconds, from read-only instant
    queries (`sum by (LABEL) (rate(NAME{agents}[W]))`); agents without series are left out.

    SourceError when Prometheus does not answer, or answers something that is not a number.
    """
    window = f"{math.ceil(window_s)}s"
    sel = selector(agent_label, agents)
    rates: dict[str, dict[str, float]] = {}
    for key, metric in RATES.items():
        query = f"sum by ({agent_label}) (rate({metric}{sel}[{window}]))"
        try:
            got = await client.instant(query)
        except PrometheusError as exc:
            raise SourceError(str(exc)) from None
        for labels, value in got:
            who = labels.get(agent_label)
            if who is None or not math.isfinite(value):
                continue
            rates.setdefault(who, {})[key] = value
    label = f"Prometheus {shown_url(client.base_url)}, {_seconds(window_s)} window"
    out: dict[str, Traffic] = {}
    for agent in agents:
        r: Mapping[str, float] = rates.get(agent, {})
        if "tasks" not in r:
            continue
        out[agent] = per_day(
            label,
            1.0,
            r["tasks"],
            r.get("tokens_in", 0.0),
            r.get("tokens_out", 0.0),
            r.get("cost", 0.0),
        )
    return out
