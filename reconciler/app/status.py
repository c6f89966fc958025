"""Status: every chosen agent judged green, yellow or red from its box and metrics now."""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.app.config import load_config
from reconciler.config.repo import Repo
from reconciler.config.select import parse_selector, select
from reconciler.errors import Refused
from reconciler.model.agent import Agent
from reconciler.model.live import BoxState
from reconciler.render import render_payload, sha256_hex
from reconciler.report.status import StatusReport, status_report
from reconciler.secretstore import fleet_key
from reconciler.status import Signals, assess, summarize
from reconciler.transport.link import FleetLink, former_agents
from reconciler.transport.metrics import MetricRates, Problem, Reason


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Which repo, which agents (a selector), and the metric window."""

    repo: Path
    selector: str = ""
    window_s: float = 5.0


@dataclass(frozen=True, slots=True)
class StatusScope:
    """The loaded repo and the agents a status reads (checked once, read many times)."""

    request: StatusRequest
    repo: Repo
    agents: list[Agent]


def scope(req: StatusRequest) -> StatusScope:
    """Load the repo and choose the agents; InputError for a bad selector or none chosen."""
    loaded = load_config(req.repo)
    terms = parse_selector(req.selector)
    agents = select((ea.agent for ea in loaded.agents.values()), terms)
    if not agents:
        raise Refused(f"no agent matches {req.selector!r}")
    return StatusScope(req, loaded, agents)


def _signals(r: MetricRates | Problem | None) -> Signals:
    if r is None:
        return Signals(problem="not scraped")
    if isinstance(r, Problem):
        if r.reason is Reason.NO_TASKS:
            return Signals(tasks_per_s=0.0, samples=0)
        return Signals(problem=str(r))
    return Signals(
        tasks_per_s=r.tasks_per_s,
        error_rate=r.error_rate,
        latency_p95_s=r.latency_p95_s if r.latency_samples else None,
        samples=r.samples,
    )


async def status(s: StatusScope) -> StatusReport:
    """Read every chosen box and its metrics over the window; judge each agent."""
    repo, agents, root = s.repo, s.agents, s.request.repo.resolve()
    key = fleet_key(repo.fleet, root)
    async with FleetLink(repo.fleet.connection, root) as link:
        live_task = asyncio.create_task(link.read(agents, repo.fleet.fleet_id, key))
        rates = await link.rates(agents, s.request.window_s)
        live = await live_task
        former = former_agents(root, live.values(), repo.agents.keys())
        orphans = await link.orphans(agents, repo.fleet.fleet_id, former)
    # Metrics of a box that could not be read say nothing; one that answered with an
    # unreadable stamp is still judged by them.
    answered = {
        n for n, b in live.items() if b.state is not BoxState.UNKNOWN or b.stamp_error is not None
    }
    signals = {a.name: _signals(rates.get(a.name) if a.name in answered else None) for a in agents}
    peers: dict[str, list[float]] = {}
    for a in agents:
        p95 = signals[a.name].latency_p95_s
        if p95 is not None:
            peers.setdefault(a.tier, []).append(p95)
    rows = []
    for a in agents:
        tier_p95 = statistics.median(peers[a.tier]) if len(peers.get(a.tier, [])) >= 3 else None
        rows.append(
            assess(
                a.name,
                a.tier,
                a.shard,
                live[a.name],
                signals[a.name],
                desired_sha=sha256_hex(render_payload(a.config)),
                peer_p95_s=tier_p95,
            )
        )
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return status_report(
        repo.fleet.fleet_id, checked, rows, summarize(rows), [o.agent for o in orphans]
    )
