"""Status: every chosen agent judged green, yellow or red from its box and metrics now.

A `StatusSession` keeps its connections open across refreshes (`--watch`, the bench):
the first refresh scrapes the metrics twice over the window, every later one once, its
rates taken against the previous refresh's scrape. Each refresh also says which boxes
run other config than the repo's head, and which of those the last finished rollout
left behind (its journal summary's `left_behind`), and, from the state apply itself uses
(`--state postgresql://...`, --state-dir, fleet.yaml `state:`), who holds the fleet lock
and which rollouts are running or were cut short: an operator on another machine sees a
rollout a laptop or a CI job runs.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.app.config import load_config
from reconciler.app.state import open_state
from reconciler.config.repo import Repo
from reconciler.config.select import parse_selector, select
from reconciler.engine.session import find_moves
from reconciler.errors import Refused, StateError
from reconciler.journal.base import LockLease, RolloutRecord
from reconciler.model.agent import Agent
from reconciler.model.fleet import FleetFile
from reconciler.model.live import BoxState, LiveBox
from reconciler.render import render_payload, sha256_hex
from reconciler.repo import GitError, work_tree
from reconciler.report.status import (
    LockOut,
    RolloutOut,
    StateOut,
    StatusReport,
    status_report,
)
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


def _when(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class StateSeen:
    """What status read from the state: the last finished rollout's id and the boxes it left
    behind, and the fleet lock and unfinished rollouts (`out` None: no journal here)."""

    left_by: str | None = None
    left: list[str] = field(default_factory=list)
    out: StateOut | None = None


def _left_behind(history: Sequence[RolloutRecord]) -> tuple[str | None, list[str]]:
    """The last finished rollout's id and the boxes it left behind."""
    for r in history:
        if r.finished_at is None:
            continue
        left = (r.summary or {}).get("left_behind")
        return r.rollout_id, [str(n) for n in left] if isinstance(left, list) else []
    return None, []


def _lock_out(lease: LockLease, now: datetime) -> LockOut:
    return LockOut(
        lock_id=lease.lock_id,
        holder=str(lease.holder),
        rollout_id=lease.holder.rollout_id,
        since=_when(lease.since) or "",
        expires=_when(lease.expires) or "",
        heartbeat=_when(lease.heartbeat),
        dead=lease.dead(now),
    )


def state_out(
    where: str, lease: LockLease | None, unfinished: Sequence[RolloutRecord], now: datetime
) -> StateOut:
    """The lock and the unfinished rollouts as status shows them: a rollout is running when
    a holder not known dead holds the fleet lock for it, else it was cut short."""
    lock = None if lease is None else _lock_out(lease, now)
    live = lock.rollout_id if lock is not None and lock.dead is None else None
    return StateOut(
        where=where,
        lock=lock,
        unfinished=[
            RolloutOut(
                rollout_id=r.rollout_id,
                target_revision=r.target_revision,
                holder=str(r.holder),
                started_at=_when(r.started_at) or "",
                boxes=len(r.pre_shas),
                running=r.rollout_id == live,
            )
            for r in unfinished
        ],
    )


def read_state(fleet: FleetFile, state_dir: Path | None) -> StateSeen:
    """Read the state as apply would find it (reading creates no local file).

    Raises:
        StateError: the journal or the lock cannot be read (the message says where).
    """
    with open_state(fleet, state_dir) as state:
        journal = state.existing_journal()
        if journal is None:
            return StateSeen()
        left_by, left = _left_behind(journal.history(fleet.fleet_id, limit=20))
        lease = state.lock.holder(fleet.fleet_id)
        unfinished = journal.unfinished(fleet.fleet_id)
        out = state_out(state.where, lease, unfinished, datetime.now(UTC))
    return StateSeen(left_by, left, out)


async def _reread(fleet: FleetFile, state_dir: Path | None, was: StateSeen) -> StateSeen:
    """A later refresh's read of the state (in a thread, beside the box reads); when it
    fails, the last read's left-behind boxes and the error, so a --watch goes on."""
    try:
        return await asyncio.to_thread(read_state, fleet, state_dir)
    except StateError as exc:
        where = was.out.where if was.out is not None else "the state"
        return StateSeen(was.left_by, was.left, StateOut(where=where, error=str(exc)))


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
        self.state: StateSeen | None = None  # the first refresh reads it (errors stop it)
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
        fleet, state_dir = s.repo.fleet, s.request.state_dir
        if self.state is None:
            self.state = read_state(fleet, state_dir)
            live, rates = await self.read()
        else:
            state_task = asyncio.create_task(_reread(fleet, state_dir, self.state))
            try:
                live, rates = await self.read()
            finally:
                self.state = await state_task
        # A box not yet moved to its new config path is read at its old one (not "unmanaged").
        await find_moves(self.link, self.root, live, s.agents, fleet.fleet_id, self.key)
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
    seen = session.state or StateSeen()
    return status_report(
        s.repo.fleet.fleet_id,
        checked,
        rows,
        summarize(rows),
        orphans,
        current=current,
        head_revision=session.head,
        left_behind=seen.left,
        left_by=seen.left_by,
        state=seen.out,
    )


async def status(s: StatusScope) -> StatusReport:
    """Read every chosen box and its metrics over the window; judge each agent."""
    async with StatusSession(s) as session:
        return await session.refresh()
