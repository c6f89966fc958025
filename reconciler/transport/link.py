"""The connections of one command to the fleet: one SSH pool, one HTTP client.

`FleetLink` is what diff, status and apply share: it reads every box's live
state, finds orphans, and scrapes metrics twice to turn counters into rates.
One connection per box, reused for every operation of the command.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.model.agent import Agent
from reconciler.model.box import Health
from reconciler.model.fleet import Connection
from reconciler.model.live import BoxState, LiveBox
from reconciler.repo import GitError, path_change_revisions, read_revision
from reconciler.transport.base import TransportError
from reconciler.transport.http import HttpProbe
from reconciler.transport.live import Box, Orphan, find_orphans, read_fleet
from reconciler.transport.metrics import (
    MetricRates,
    MetricSnapshot,
    Problem,
    Reason,
    parse_exposition,
)
from reconciler.transport.metrics import rates as metric_rates
from reconciler.transport.ssh import SshBox, SshOptions, SshPool, SshTarget


class FleetLink:
    """An SSH pool and an HTTP probe for one command; close it (or use `async with`)."""

    def __init__(
        self, connection: Connection, root: Path, *, trust_on_first_use: bool = False
    ) -> None:
        self.timeout = connection.command_timeout_s
        self.root = root
        self.concurrency = connection.concurrency
        self.pool = SshPool(
            SshOptions.from_connection(connection, trust_on_first_use=trust_on_first_use)
        )
        self.probe = HttpProbe(
            max_connections=min(connection.concurrency, 256),
            allowed_hosts=connection.allowed_probe_hosts,
        )

    async def __aenter__(self) -> FleetLink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.pool.close()
        await self.probe.close()

    def ssh(self, agent: Agent) -> SshBox:
        """The agent's box connection (connects lazily, reused)."""
        return self.pool.box(SshTarget.of(agent, self.root))

    def command_timeout(self, agent: Agent) -> float:
        """Seconds the agent's reload, restart or health command may take on its box.

        The agent's own `command_timeout_s` when set (a box whose reload is known to be
        slow), else fleet.yaml `connection.command_timeout_s`.
        """
        return self.timeout if agent.command_timeout_s is None else agent.command_timeout_s

    async def read(
        self,
        agents: Sequence[Agent],
        fleet_id: str,
        fleet_key: bytes | None = None,
        progress: Callable[[LiveBox], None] | None = None,
    ) -> dict[str, LiveBox]:
        """Every agent's live state (unreachable boxes are UNKNOWN, with the reason)."""

        async def connect(agent: Agent) -> Box:
            return self.ssh(agent)

        # The box a health URL belongs to: a URL that agents of different hosts share is
        # nobody's own (host ""), so it is probed only when fleet.yaml allows its host.
        owners: dict[str, set[str]] = {}
        for a in agents:
            if (url := a.url(a.health_url)) is not None:
                owners.setdefault(url, set()).add(a.host)

        async def fetch(url: str) -> Health:
            hosts = owners.get(url, set())
            host = next(iter(hosts)) if len(hosts) == 1 else ""
            return await self.probe.fetch_health(url, timeout=self.timeout, host=host)

        return await read_fleet(
            agents,
            connect,
            fetch,
            fleet_id=fleet_id,
            fleet_key=fleet_key,
            timeout=self.timeout,
            concurrency=self.concurrency,
            progress=progress,
        )

    async def orphans(
        self, agents: Sequence[Agent], fleet_id: str, former: Sequence[Agent] = ()
    ) -> list[Orphan]:
        """Boxes stamped for this fleet whose agent the repo no longer has."""

        async def connect(agent: Agent) -> Box:
            return self.ssh(agent)

        return await find_orphans(
            agents, connect, fleet_id=fleet_id, former=former, concurrency=self.concurrency
        )

    async def scrape(self, agents: Sequence[Agent]) -> dict[str, MetricSnapshot | Problem]:
        """One scrape of every agent's metrics endpoint (a Problem when it fails)."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(agent: Agent) -> tuple[str, MetricSnapshot | Problem]:
            url = agent.url(agent.metrics_url)
            if url is None:
                return agent.name, Problem(Reason.MISSING_SERIES, "no metrics_url configured")
            async with gate:
                try:
                    text = await self.probe.fetch_text(
                        url, timeout=self.timeout, box=agent.name, host=agent.host
                    )
                except TransportError as exc:
                    return agent.name, Problem(Reason.MISSING_SERIES, str(exc))
            return agent.name, parse_exposition(text, at=time.monotonic(), agent=agent.name)

        results = await asyncio.gather(*(one(a) for a in agents))
        return dict(results)

    async def rates(
        self, agents: Sequence[Agent], window_s: float
    ) -> dict[str, MetricRates | Problem]:
        """Rates over `window_s` seconds from two scrapes of every agent."""
        first = await self.scrape(agents)
        await asyncio.sleep(window_s)
        second = await self.scrape(agents)
        out: dict[str, MetricRates | Problem] = {}
        for name, before in first.items():
            after = second[name]
            if isinstance(before, Problem):
                out[name] = before
            elif isinstance(after, Problem):
                out[name] = after
            else:
                out[name] = metric_rates(before, after)
        return out


def _stamped_repos(root: Path, live: Iterable[LiveBox], more: Iterable[str] = ()) -> Iterator[Repo]:
    """The repo as it was at each revision the boxes' stamps name (newest name order), and
    at the revisions in `more`.

    A revision that is not in `root`'s git history, or no longer loads, is skipped.
    """
    named = {b.stamp.revision for b in live if b.stamp is not None} | set(more)
    revisions = sorted({r.split("+", 1)[0] for r in named if r and r != "unmanaged"})
    for rev in revisions:
        full = len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)
        old = _repo_at(str(root), rev) if full else _load_at(str(root), rev)
        if old is not None:
            yield old


@functools.lru_cache(maxsize=4)
def _repo_at(root: str, sha: str) -> Repo | None:
    """The repo at a full commit sha: one state for good, so loaded once (status refreshes
    and a move's lookups ask again); a name that can move (HEAD) is never cached."""
    return _load_at(root, sha)


def _load_at(root: str, rev: str) -> Repo | None:
    try:
        return load_repo(read_revision(Path(root), rev).files)
    except (GitError, ConfigErrors):
        return None


def former_agents(root: Path, live: Iterable[LiveBox], current: Collection[str]) -> list[Agent]:
    """Agents of the revisions the boxes' stamps name that the repo no longer has.

    Where a removed agent's box is: in the repo as it was when that box (or any
    box) was last applied. A revision that is not in `root`'s git history, or no
    longer loads, is skipped: orphans are then found only beside current agents.
    """
    found: dict[str, Agent] = {}
    for old in _stamped_repos(root, live):
        for name, ea in old.agents.items():
            if name not in current:
                found.setdefault(name, ea.agent)
    return [found[n] for n in sorted(found)]


def former_paths(
    root: Path, live: Mapping[str, LiveBox], agents: Mapping[str, Agent]
) -> dict[str, list[Agent]]:
    """Where a current agent's box may still be: the agent at each other config path it had
    in the revisions the boxes' stamps name, on the same host and port.

    Only for agents whose box at its current path has no stamp (a move not yet applied).
    Each candidate is the current agent with that revision's config_path and secrets_path;
    the caller reads it and keeps the one whose stamp names this agent and fleet. Besides
    the stamps' revisions (none when every box moved: no box has a stamp at its new path),
    HEAD and the recent commits that change a path (git log -G) are looked at.
    """
    unstamped = {n for n, a in agents.items() if n in live and live[n].state is BoxState.UNMANAGED}
    if not unstamped:
        return {}
    history = path_change_revisions(root)
    return past_paths(root, live.values(), {n: agents[n] for n in unstamped}, history)


def past_paths(
    root: Path, live: Iterable[LiveBox], agents: Mapping[str, Agent], more: Iterable[str] = ()
) -> dict[str, list[Agent]]:
    """Each agent of `agents` at every other config path it had (same host and port) in the
    revisions the boxes' stamps name and in `more` (resume: the stamps' histories, a
    journaled plan's revisions). Each is the agent with that revision's config_path and
    secrets_path; agents that never had another path are left out."""
    found: dict[str, dict[str, Agent]] = {}
    for old in _stamped_repos(root, live, more):
        for name in agents.keys() & old.agents.keys():
            was, now = old.agents[name].agent, agents[name]
            if (was.host, was.port) != (now.host, now.port) or was.config_path == now.config_path:
                continue
            update = {"config_path": was.config_path, "secrets_path": was.secrets_path}
            found.setdefault(name, {}).setdefault(was.config_path, now.model_copy(update=update))
    return {n: list(by_path.values()) for n, by_path in sorted(found.items())}
