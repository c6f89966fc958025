"""Reading the live state of every box: stamp, config bytes, secrets fingerprint, health.

"The running box is the truth": nothing here is cached between commands. Each
box is read over its one SSH connection (stamp, config file, secrets file,
optionally the health command) and its health endpoint over HTTP; a box that
cannot be read is `UNKNOWN` with the reason, never skipped. Orphans are found
by listing the stamp files beside the config paths the repo uses on each
host: a stamp of this fleet whose agent is no longer in the repo.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from pydantic import ValidationError

from reconciler.model.agent import Agent
from reconciler.model.box import BoxPaths, ContractError, Health, Stamp, parse_health, parse_stamp
from reconciler.model.live import BoxState, LiveBox
from reconciler.secrets.values import fingerprint
from reconciler.transport.base import CommandResult, TransportError


class Box(Protocol):
    """What live-state reading needs of a box connection (transport.ssh provides it)."""

    async def read_file(self, path: PurePosixPath) -> bytes | None: ...

    async def listdir(self, path: PurePosixPath) -> list[str]: ...

    async def run(
        self, argv: Sequence[str], *, timeout: float, read_only: bool = False
    ) -> CommandResult: ...


Connect = Callable[[Agent], Awaitable[Box]]
FetchHealth = Callable[[str], Awaitable[Health]]


@dataclass(frozen=True, slots=True)
class Orphan:
    """A box stamped for this fleet whose agent no longer exists in the repo."""

    agent: str
    host: str
    port: int
    stamp_path: str
    revision: str


async def _health(agent: Agent, box: Box, fetch: FetchHealth, timeout: float) -> Health:
    url = agent.url(agent.health_url)
    if url:
        return await fetch(url)
    if agent.commands.health:
        limit = timeout if agent.command_timeout_s is None else agent.command_timeout_s
        done = await box.run(agent.commands.health, timeout=limit, read_only=True)
        if done.exit_status != 0:
            raise ContractError(
                f"health command {shlex.join(agent.commands.health)} exited {done.exit_status}"
            )
        return parse_health(done.stdout.encode())
    raise ContractError("no health_url and no health command configured")


async def read_box(
    agent: Agent,
    connect: Connect,
    fetch_health: FetchHealth,
    *,
    fleet_id: str,
    fleet_key: bytes | None,
    timeout: float,
) -> LiveBox:
    """The live state of one agent's box."""
    paths = BoxPaths.of(agent.config_path, agent.secrets_path)

    async def nothing() -> None:
        return None

    async def files() -> tuple[Box, bytes | None, bytes | None, bytes | None, bytes | None]:
        box = await connect(agent)
        stamp = await box.read_file(paths.stamp)  # the first operation opens the connection
        config, secrets, lease = await asyncio.gather(
            box.read_file(paths.config),
            box.read_file(paths.secrets) if fleet_key is not None else nothing(),
            box.read_file(paths.lease_file),
        )
        return box, stamp, config, secrets, lease

    async def health_over_http() -> Health | str | None:
        url = agent.url(agent.health_url)
        if url is None:
            return None
        try:
            return await fetch_health(url)
        except (TransportError, ContractError) as exc:
            return str(exc)

    # The SSH reads and the HTTP health probe go out together: one round trip, not two.
    read, early_health = await asyncio.gather(files(), health_over_http(), return_exceptions=True)
    if isinstance(read, TransportError):
        return LiveBox(agent.name, BoxState.UNKNOWN, reason=str(read))
    if isinstance(read, BaseException):
        raise read
    if isinstance(early_health, BaseException):
        raise early_health
    box, stamp_bytes, config, secrets, lease = read

    stamp: Stamp | None = None
    state = BoxState.UNMANAGED
    reason = None
    stamp_error = None
    if stamp_bytes is not None:
        parsed = _parse_stamp(stamp_bytes)
        if isinstance(parsed, str):
            # Not foreign: an unreadable stamp names no fleet. Unknown, so that diff fails
            # (unless --allow-unreachable) and apply refuses the box, as for an unreachable one.
            state, stamp_error = BoxState.UNKNOWN, parsed
            reason = (
                f"{agent.name}: stamp unreadable: {paths.stamp} on {agent.host}:{agent.port}:"
                f" {parsed}; check what wrote it, then repair it or move it aside (the next"
                " apply then adopts the box)"
            )
        else:
            stamp = parsed
            if stamp.fleet_id != fleet_id or stamp.agent != agent.name:
                state = BoxState.FOREIGN
                reason = (
                    f"{paths.stamp} on {agent.host}:{agent.port} belongs to fleet "
                    f"{stamp.fleet_id!r} agent {stamp.agent!r}, not {fleet_id!r} {agent.name!r}"
                )
            else:
                state = BoxState.MANAGED

    health: Health | None = None
    health_error = None
    if isinstance(early_health, Health):
        health = early_health
    elif isinstance(early_health, str):
        health_error = early_health
    else:
        try:
            health = await _health(agent, box, fetch_health, timeout)
        except (TransportError, ContractError) as exc:
            health_error = str(exc)

    return LiveBox(
        agent=agent.name,
        state=state,
        reason=reason,
        stamp=stamp,
        config_bytes=config,
        config_sha256=hashlib.sha256(config).hexdigest() if config is not None else None,
        secrets_fingerprint=(
            fingerprint(secrets, fleet_key) if secrets is not None and fleet_key else None
        ),
        health=health,
        health_error=health_error,
        stamp_error=stamp_error,
        lease_bytes=lease,
    )


def _parse_stamp(data: bytes) -> Stamp | str:
    """The stamp in a stamp file, or what is wrong with it (never its content)."""
    try:
        return Stamp.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "json_invalid":
            return str(first["msg"])  # "Invalid JSON: expected value at line 1 column 1"
        return f"not a valid stamp: {first['msg']}" + (f" ({where})" if where else "")


async def read_fleet(
    agents: Sequence[Agent],
    connect: Connect,
    fetch_health: FetchHealth,
    *,
    fleet_id: str,
    fleet_key: bytes | None,
    timeout: float,
    concurrency: int,
    progress: Callable[[LiveBox], None] | None = None,
) -> dict[str, LiveBox]:
    """The live state of every agent's box, read concurrently (bounded)."""
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, LiveBox] = {}

    async def one(agent: Agent) -> None:
        async with gate:
            try:
                live = await asyncio.wait_for(
                    read_box(
                        agent,
                        connect,
                        fetch_health,
                        fleet_id=fleet_id,
                        fleet_key=fleet_key,
                        timeout=timeout,
                    ),
                    timeout=timeout * 4,
                )
            except TimeoutError:
                live = LiveBox(
                    agent.name,
                    BoxState.UNKNOWN,
                    reason=f"{agent.name} ({agent.host}:{agent.port}): reading timed out",
                )
        out[agent.name] = live
        if progress is not None:
            progress(live)

    async with asyncio.TaskGroup() as tg:
        for agent in agents:
            tg.create_task(one(agent))
    return {a.name: out[a.name] for a in agents}


async def find_orphans(
    agents: Sequence[Agent],
    connect: Connect,
    *,
    fleet_id: str,
    former: Sequence[Agent] = (),
    concurrency: int = 256,
) -> list[Orphan]:
    """Stamps of this fleet, beside the repo's config paths, for agents not in the repo.

    `former`: agents of earlier revisions (see link.former_agents) that the repo no
    longer has; their own boxes are searched too, since no remaining agent may share them.
    """
    known = {a.name for a in agents}
    seen_dirs: dict[tuple[str, int, str], Agent] = {}
    for a in [*agents, *former]:
        seen_dirs.setdefault((a.host, a.port, str(PurePosixPath(a.config_path).parent)), a)
    current_stamps = {(a.host, a.port, str(BoxPaths.of(a.config_path).stamp)) for a in agents}
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str, port: int, directory: str, agent: Agent) -> list[Orphan]:
        found: list[Orphan] = []
        async with gate:
            try:
                box = await connect(agent)
                names = await box.listdir(PurePosixPath(directory))
                for name in sorted(n for n in names if n.endswith(".stamp.json")):
                    if (host, port, f"{directory}/{name}") in current_stamps:
                        continue  # a current agent's stamp: read_fleet reads it
                    data = await box.read_file(PurePosixPath(directory) / name)
                    if data is None:
                        continue
                    try:
                        stamp = parse_stamp(data)
                    except ContractError:
                        continue
                    if stamp.fleet_id == fleet_id and stamp.agent not in known:
                        found.append(
                            Orphan(stamp.agent, host, port, f"{directory}/{name}", stamp.revision)
                        )
            except TransportError:
                pass  # the box itself is reported UNKNOWN by read_fleet
        return found

    # One listing per (host, port, directory), all at once (bounded): not one after another.
    per_dir = await asyncio.gather(*(one(*k, a) for k, a in sorted(seen_dirs.items())))
    return [o for found in per_dir for o in found]


def stamp_summary(stamp: Stamp | None) -> str:
    """A short, secret-free description of a stamp for progress lines."""
    if stamp is None:
        return "no stamp"
    return json.dumps({"revision": stamp.revision[:12], "outcome": stamp.outcome})
