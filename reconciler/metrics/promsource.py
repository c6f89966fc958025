"""The Prometheus source: counter increases per agent from PromQL templates over the HTTP API.

The mark is Prometheus' own time (`time()`), so the windows are on its clock.
A measurement at server time T over W = T - mark seconds runs, at time T:

- `sum by (LABEL) (increase(NAME{SELECTOR}[W]))` for each counter (task_errors_total
  summed over every `reason`),
- `sum by (LABEL) (increase(task_errors_total{MATCHERS,reason="auth"}[W]))`: the
  auth share of the errors, for the auth_error_rate gate. No series at all is not an
  error here (agents that do not split errors by reason): every window's
  `auth_errors` is then unknown, which only that gate minds;
- `sum by (LABEL, le) (increase(BUCKET{SELECTOR}[W]))` for the latency histogram,
- `sum by (LABEL) (resets(tasks_total{SELECTOR}[W]))`: a reset mid-window makes
  the agent's window unusable (increase() would paper over it),
- `max by (LABEL) (timestamp(tasks_total{SELECTOR}))`: the newest sample, for staleness,
- each custom gate's own template.

LABEL (metrics.agent_label, default `agent`) maps series to agents; an agent
with no series gets a reason, never a zero. An answer that is malformed, empty
(no series at all, auth errors aside) or not a number (NaN, Inf, a string) is a `SourceError`:
the gate runner retries it, then fails the gates with the reason. Templates can be replaced by name
in fleet.yaml `metrics.queries` ({selector}, {matchers} (the selector without braces),
{window}, {label} are filled in).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final, cast

from reconciler.gates import AgentWindow
from reconciler.metrics.source import Measurement, SourceError
from reconciler.model.box import (
    ERROR_REASON_AUTH,
    LABEL_ERROR_REASON,
    METRIC_COST,
    METRIC_LATENCY,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
)
from reconciler.transport.prometheus import PrometheusClient, PrometheusError

TEMPLATES: Final[Mapping[str, str]] = {
    "tasks": f"sum by ({{label}}) (increase({METRIC_TASKS}{{selector}}[{{window}}]))",
    "errors": f"sum by ({{label}}) (increase({METRIC_TASK_ERRORS}{{selector}}[{{window}}]))",
    "tokens_in": f"sum by ({{label}}) (increase({METRIC_TOKENS_IN}{{selector}}[{{window}}]))",
    "tokens_out": f"sum by ({{label}}) (increase({METRIC_TOKENS_OUT}{{selector}}[{{window}}]))",
    "cost": f"sum by ({{label}}) (increase({METRIC_COST}{{selector}}[{{window}}]))",
    "buckets": "sum by ({label}, le) "
    f"(increase({METRIC_LATENCY}_bucket{{selector}}[{{window}}]))",
    "auth_errors": "sum by ({label}) (increase("
    + METRIC_TASK_ERRORS
    + f'{{{{matchers}},{LABEL_ERROR_REASON}="{ERROR_REASON_AUTH}"}}'
    + "[{window}]))",
    "resets": f"sum by ({{label}}) (resets({METRIC_TASKS}{{selector}}[{{window}}]))",
    "last": f"max by ({{label}}) (timestamp({METRIC_TASKS}{{selector}}))",
}
COUNTERS: Final = ("tasks", "errors", "tokens_in", "tokens_out", "cost")


def matchers(label: str, agents: Sequence[str]) -> str:
    """label=~"a|b|c" for exactly these agents (names regex-escaped)."""
    alternatives = "|".join(re.escape(a) for a in sorted(agents))
    return '%s=~"%s"' % (label, alternatives.replace("\\", "\\\\"))  # noqa: UP031


def selector(label: str, agents: Sequence[str]) -> str:
    """{label=~"a|b|c"} for exactly these agents (names regex-escaped)."""
    return "{" + matchers(label, agents) + "}"


class PrometheusSource:
    """Per-agent windows from a Prometheus server."""

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        agent_label: str = "agent",
        queries: Mapping[str, str] | None = None,
        custom: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        client: PrometheusClient | None = None,
    ) -> None:
        self.client = client or PrometheusClient(url, timeout=timeout)
        self.label = agent_label
        self.templates = {**TEMPLATES, **(queries or {})}
        self.custom = dict(custom or {})

    async def close(self) -> None:
        await self.client.close()

    async def _now(self) -> float:
        try:
            got = await self.client.instant("time()")
        except PrometheusError as exc:
            raise SourceError(str(exc)) from None
        if len(got) != 1 or not math.isfinite(got[0][1]):
            raise SourceError(f"{self.client.base_url}: time() answered {got!r}")
        return got[0][1]

    async def open(self, agents: Sequence[str]) -> object:
        return await self._now()

    async def _query(
        self,
        template: str,
        agents: Sequence[str],
        window: str,
        at: float,
        *,
        empty_ok: bool = False,
    ) -> list[tuple[Mapping[str, str], float]]:
        q = (
            template.replace("{selector}", selector(self.label, agents))
            .replace("{matchers}", matchers(self.label, agents))
            .replace("{window}", window)
            .replace("{label}", self.label)
        )
        try:
            got = await self.client.instant(q, at=at)
        except PrometheusError as exc:
            raise SourceError(str(exc)) from None
        where = f"{self.client.base_url}: {q[:200]!r}"
        if not got and not empty_ok:
            raise SourceError(f"{where} answered no series (is Prometheus scraping the boxes?)")
        for labels, value in got:
            if not math.isfinite(value):
                raise SourceError(f"{where} answered {value} for {dict(labels)}: not a number")
        return got

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        start = cast(float, mark)
        now = await self._now()
        seconds = math.ceil(now - start)
        if seconds < 1:
            return Measurement(now, dict.fromkeys(agents, "no time elapsed in the window"))
        window = f"{seconds}s"
        wanted = set(agents)
        per: dict[str, dict[str, float]] = {a: {} for a in agents}
        for name in (*COUNTERS, "resets", "last"):
            for labels, value in await self._query(self.templates[name], agents, window, now):
                who = labels.get(self.label)
                if who in wanted:
                    per[who][name] = value
        auth: dict[str, float] = {}
        for labels, value in await self._query(
            self.templates["auth_errors"], agents, window, now, empty_ok=True
        ):
            who = labels.get(self.label)
            if who in wanted:
                auth[who] = value
        buckets: dict[str, dict[float, float]] = {a: {} for a in agents}
        for labels, value in await self._query(self.templates["buckets"], agents, window, now):
            who = labels.get(self.label)
            if who in wanted and "le" in labels:
                try:
                    le = float(labels["le"])
                except ValueError:
                    raise SourceError(
                        f"{self.client.base_url}: a latency bucket with le={labels['le']!r}"
                    ) from None
                buckets[who][le] = value
        custom: dict[str, dict[str, float]] = {a: {} for a in agents}
        for gate, template in self.custom.items():
            for labels, value in await self._query(template, agents, window, now):
                who = labels.get(self.label)
                if who in wanted:
                    custom[who][gate] = value
        out: dict[str, AgentWindow | str] = {}
        for a in agents:
            v = per[a]
            missing = [n for n in (*COUNTERS, "last") if n not in v]
            if missing:
                out[a] = f"no Prometheus series for {a} ({', '.join(missing)})"
                continue
            if v.get("resets", 0.0) > 0:
                out[a] = f"counter reset in the window ({v['resets']:g} reset(s) of {METRIC_TASKS})"
                continue
            out[a] = AgentWindow(
                agent=a,
                start=start,
                end=now,
                tasks=v["tasks"],
                errors=v["errors"],
                tokens_in=v["tokens_in"],
                tokens_out=v["tokens_out"],
                cost=v["cost"],
                buckets=tuple(sorted(buckets[a].items())),
                last_sample_at=v["last"],
                custom=custom[a],
                auth_errors=auth.get(a),
            )
        return Measurement(now, out)
