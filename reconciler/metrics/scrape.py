"""The direct-scrape source: each box's /metrics, read at the mark and at each measurement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import cast

from reconciler.gates import AgentWindow
from reconciler.metrics.source import Measurement
from reconciler.metrics.window import window_between
from reconciler.transport.base import TransportError
from reconciler.transport.http import HttpProbe
from reconciler.transport.metrics import MetricSnapshot, Problem, parse_exposition

Snapshots = dict[str, MetricSnapshot | str]


class ScrapeSource:
    """Reads agents' Prometheus text over HTTP (the command's shared HttpProbe)."""

    name = "scrape"

    def __init__(
        self,
        probe: HttpProbe,
        urls: Mapping[str, str | None],
        *,
        timeout: float = 10.0,
        concurrency: int = 64,
        hosts: Mapping[str, str] | None = None,
    ) -> None:
        self.probe, self.urls, self.timeout = probe, dict(urls), timeout
        self.hosts = dict(hosts or {})  # agent -> its box's host: a URL elsewhere is refused
        self._gate = asyncio.Semaphore(concurrency)

    async def _one(self, agent: str) -> MetricSnapshot | str:
        url = self.urls.get(agent)
        if url is None:
            return f"{agent}: no metrics_url configured"
        async with self._gate:
            try:
                text = await self.probe.fetch_text(
                    url, timeout=self.timeout, box=agent, host=self.hosts.get(agent)
                )
            except TransportError as exc:
                return str(exc)
        snap = parse_exposition(text, at=time.time(), agent=agent)
        return str(snap) if isinstance(snap, Problem) else snap

    async def _scrape(self, agents: Sequence[str]) -> Snapshots:
        got = await asyncio.gather(*(self._one(a) for a in agents))
        return dict(zip(agents, got, strict=True))

    async def open(self, agents: Sequence[str]) -> object:
        return await self._scrape(agents)

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        first = cast(Snapshots, mark)
        now = await self._scrape(agents)
        out: dict[str, AgentWindow | str] = {}
        for agent in agents:
            before, after = first.get(agent), now[agent]
            if before is None:
                out[agent] = "not scraped at the start of the window"
            elif isinstance(before, str):
                out[agent] = f"at the start of the window: {before}"
            elif isinstance(after, str):
                out[agent] = after
            else:
                out[agent] = window_between(agent, before, after)
        return Measurement(time.time(), out)

    async def close(self) -> None:
        """The probe belongs to the command; nothing to release here."""
