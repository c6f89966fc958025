"""Status: every chosen agent judged green, yellow or red from its box and metrics now.

A `StatusSession` keeps its connections open across refreshes (`--watch`, the bench):
the first refresh scrapes the metrics twice over the window, every later one once, its
rates taken against the previous refresh's scrape. Each refresh also says which boxes
run other config than the repo's head, and which of those the last finished rollout
left behind (its journal summary's `left_behind`).
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.app.config import load_config
from reconciler.app.state import open_state
from reconciler.config.repo import Repo
from reconciler.config.select import parse_selector, select
from reconciler.errors import Refused
from reconciler.model.agent import Agent
from reconciler.model.live import BoxState, LiveBox
from reconciler.render import render_payload, sha256_hex
from reconciler.repo import GitError, work_tree
from reconciler.report.status import StatusReport, status_report
from reconciler.secretstore import fleet_key
from reconciler.status import Signals, assess, summarize
from reconciler.transport.link import FleetLink, former_agents
from reconciler.transport.metrics import (
    MetricRates,
    MetricSnapshot,
    Problem,
    Reason,
)
from reconciler.transport.metrics import rates as metric_rates


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Which repo, which agents (a selector), and the metric window."""

    repo: Path
    selector: str = ""
    window_s: float = 5.0
    state_dir: Path | None = None  # the journal that says which boxes a rollout left behind


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


def _head(root: Path) -> str | None:
    """The repo's head revision as stamps write it (None: not a git repo)."""
    try:
        return work_tree(root).revision
    except GitError:
        return None


def _last_left_behind(s: StatusScope) -> tuple[str | None, list[str]]:
    """The last finished rollout's id and the boxes it left behind (none without a journal)."""
    fleet = s.repo.fleet
    with open_state(fleet, s.request.state_dir) as state:
        journal = state.existing_journal()
        if journal is None:
            return None, []
        for r in journal.history(fleet.fleet_id, limit=20):
            if r.finished_at is None:
                continue
            left = (r.summary or {}).get("left_behind")
            names = [str(n) for n in left] if isinstance(left, list) else []
            return r.rollout_id, names
    return None, []


def _rates(
    before: dict[str, MetricSnapshot | Problem], after: dict[str, MetricSnapshot | Problem]
) -> dict[str, MetricRates | Problem]:
    out: dict[str, MetricRates | Problem] = {}
    for name, now in after.items():
        was = before.get(name)
        if isinstance(now, Problem):
            out[name] = now
        elif was is None or isinstance(was, Problem):
            out[name] = was or Problem(Reason.MISSING_SERIES, "no earlier scrape")
        else:
            out[name] = metric_rates(was, now)
    return out


class StatusSession:
    """Refreshes of one status over kept-open connections (use `async with`)."""

    def __init__(self, s: StatusScope) -> None:
        self.scope = s
        self.root = s.request.repo.resolve()
        self.key = fleet_key(s.repo.fleet, self.root)
        self.link = FleetLink(s.repo.fleet.connection, self.root)
        self.desired = {a.name: sha256_hex(render_payload(a.config)) for a in s.agents}
        self.head = _head(self.root)
        self.left_by, self.left = _last_left_behind(s)
        self._scrape: dict[str, MetricSnapshot | Problem] | None = None
        self._former: tuple[frozenset[str], list[Agent]] | None = None
        self.refreshes = 0

    async def __aenter__(self) -> StatusSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.link.close()

    async def _metrics(self) -> dict[str, MetricRates | Problem]:
        agents = self.scope.agents
        if self._scrape is None:
            self._scrape = await self.link.scrape(agents)
            await asyncio.sleep(self.scope.request.window_s)
        now = await self.link.scrape(agents)
        rates = _rates(self._scrape, now)
        self._scrape = now
        return rates

    async def read(self) -> tuple[dict[str, LiveBox], dict[str, MetricRates | Problem]]:
        """Every box's live state and its metric rates since the previous refresh."""
        s = self.scope
        live_task = asyncio.create_task(self.link.read(s.agents, s.repo.fleet.fleet_id, self.key))
        try:
            rates = await self._metrics()
        finally:
            live = await live_task
        return live, rates

    async def refresh(self) -> StatusReport:
        """One refresh: read, judge every agent, and report."""
        s = self.scope
        live, rates = await self.read()
        named = frozenset(b.stamp.revision for b in live.values() if b.stamp is not None)
        if self._former is None or self._former[0] != named:  # git reads, once per set
            self._former = (named, former_agents(self.root, live.values(), s.repo.agents.keys()))
        former = self._former[1]
        orphans = await self.link.orphans(s.agents, s.repo.fleet.fleet_id, former)
        self.refreshes += 1
        return judge(s, live, rates, [o.agent for o in orphans], self)


def judge(
    s: StatusScope,
    live: dict[str, LiveBox],
    rates: dict[str, MetricRates | Problem],
    orphans: list[str],
    session: StatusSession,
) -> StatusReport:
    """Every agent's color from what was read, and the report."""
    agents = s.agents
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
    current: dict[str, bool | None] = {}
    for a in agents:
        tier_p95 = statistics.median(peers[a.tier]) if len(peers.get(a.tier, [])) >= 3 else None
        box = live[a.name]
        desired = session.desired[a.name]
        current[a.name] = None if box.config_sha256 is None else box.config_sha256 == desired
        rows.append(
            assess(
                a.name,
                a.tier,
                a.shard,
                box,
                signals[a.name],
                desired_sha=desired,
                peer_p95_s=tier_p95,
            )
        )
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return status_report(
        s.repo.fleet.fleet_id,
        checked,
        rows,
        summarize(rows),
        orphans,
        current=current,
        head_revision=session.head,
        left_behind=session.left,
        left_by=session.left_by,
    )


async def status(s: StatusScope) -> StatusReport:
    """Read every chosen box and its metrics over the window; judge each agent."""
    async with StatusSession(s) as session:
        return await session.refresh()
