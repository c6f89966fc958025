"""`reconcile worker`: run the box operations of rollouts coordinated through the shared state.

A worker needs what a one-process `apply` needs for the boxes: the fleet repo (it renders
it itself, at the coordinator's revision: rendered payloads and secret values never go
into PostgreSQL), the SSH keys and known_hosts fleet.yaml names, and the age identity
for the secrets. It serves one rollout (`--rollout ID`, how `apply --workers N` starts its
own) or, standing by on another machine, every rollout of its repo's fleet in turn. It
refuses (exit 1) a coordinator of another reconciler version, and a rollout of a revision
its repo does not render to (check out that commit first). At its end it prints one JSON
line on stdout: who it was, what it ran, and the CPU seconds it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import __version__
from reconciler.app.state import state_url_of
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import Driver
from reconciler.engine.session import ApplyRefused, Link, Request, read_source, targets_for
from reconciler.engine.workers import COORDINATOR_STALE_S, Served, options_from, serve
from reconciler.errors import InputError
from reconciler.journal.base import Holder
from reconciler.journal.pgwork import Coordinator, WorkQueue
from reconciler.journal.postgres import PostgresJournal
from reconciler.rollout.preflight import desired_of
from reconciler.rollout.reporter import JsonValue
from reconciler.secretstore import desired_fingerprints, fleet_key

Tell = Callable[[str], None]
APPEAR_S = 30.0  # how long `--rollout ID` waits for its coordinator to announce it


class WorkerRefused(InputError):
    """The worker will not serve this rollout (another version, another revision)."""


@dataclass(frozen=True, slots=True)
class WorkerRequest:
    """What `reconcile worker` was asked."""

    repo: Path
    url: str | None  # --state; None: fleet.yaml's `state:`
    rollout_id: str | None = None  # serve this rollout, then exit
    slots: int | None = None  # box operations at once (default: the rollout's parallel)
    idle_exit_s: float | None = None  # standing by: exit after this long with no rollout
    env: Mapping[str, str] | None = None


@dataclass
class WorkerResult:
    """What the worker did, and its exit code."""

    exit_code: int = 0
    served: list[Served] = field(default_factory=list)
    holder: str = ""

    def summary(self) -> dict[str, JsonValue]:
        """The JSON line printed at the end (CPU by getrusage of this process)."""
        use = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "worker": self.holder,
            "pid": Holder.here().pid,
            "cpu_s": round(use.ru_utime + use.ru_stime, 3),
            "boxes": sum(s.boxes for s in self.served),
            "lost": sum(s.lost for s in self.served),
            "reassigned": sum(s.reassigned for s in self.served),
            "rollouts": [s.rollout_id for s in self.served],
            "exit_code": self.exit_code,
        }


async def run_worker(req: WorkerRequest, tell: Tell) -> WorkerResult:
    """Serve rollouts as the request says (see the module docstring)."""
    holder = Holder.here().worker_name()
    result = WorkerResult(holder=holder)
    url = req.url or state_url_of(
        None, read_source(Request(req.repo, allow_dirty=True)).repo.fleet.state
    )
    if url is None:
        raise WorkerRefused(
            "a worker needs the shared state its coordinator uses: --state "
            "postgresql://USER@HOST:PORT/DATABASE, or fleet.yaml `state:` (docs/team.md)"
        )
    queue = WorkQueue(url)
    journal = PostgresJournal(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        seen: set[str] = set()
        idle_since = time.monotonic()
        while not stop.is_set():
            c = _next(queue, req, seen)
            if c is None:
                if req.rollout_id is not None and time.monotonic() - idle_since > APPEAR_S:
                    raise WorkerRefused(
                        f"rollout {req.rollout_id} has no live coordinator in the shared state "
                        "(finished, never started, or its coordinator is gone)"
                    )
                if req.idle_exit_s is not None and time.monotonic() - idle_since > req.idle_exit_s:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                continue
            seen.add(c.rollout_id)
            served = await _serve_one(c, req, queue, journal, holder, stop, tell)
            result.served.append(served)
            tell(f"rollout {c.rollout_id}: {served.boxes} box operation(s) run here; "
                 f"left it: {served.ended}")  # fmt: skip
            if req.rollout_id is not None:
                break
            idle_since = time.monotonic()
    finally:
        queue.close()
        journal.close()
    return result


def _fleet_state(req: WorkerRequest) -> str | None:
    return read_source(Request(req.repo, allow_dirty=True, env=req.env)).repo.fleet.state


def _next(queue: WorkQueue, req: WorkerRequest, seen: set[str]) -> Coordinator | None:
    if req.rollout_id is not None:
        c = queue.coordinator(req.rollout_id)
        if c is None or c.done or c.age_s > COORDINATOR_STALE_S:
            return None
        return c
    live = queue.live(None, stale_s=COORDINATOR_STALE_S)
    return next((c for c in live if c.rollout_id not in seen), None)


async def _serve_one(
    c: Coordinator,
    req: WorkerRequest,
    queue: WorkQueue,
    journal: PostgresJournal,
    holder: str,
    stop: asyncio.Event,
    tell: Tell,
) -> Served:
    if c.version != __version__:
        raise WorkerRefused(
            f"rollout {c.rollout_id}'s coordinator runs reconciler {c.version}, this worker "
            f"{__version__}: a worker serves only its own version; upgrade one of them"
        )
    source = read_source(Request(repo=req.repo, allow_dirty=True, env=req.env))
    fleet = source.repo.fleet
    if fleet.fleet_id != c.fleet_id:
        raise WorkerRefused(
            f"rollout {c.rollout_id} is of fleet {c.fleet_id}; {req.repo} is fleet "
            f"{fleet.fleet_id}: run the worker in that fleet's repo"
        )
    if source.revision != c.revision:
        raise WorkerRefused(
            f"rollout {c.rollout_id} applies revision {c.revision}; {req.repo} renders "
            f"{source.revision}: check out {c.revision.split('+')[0]} (the same work tree for "
            "a +dirty revision) and start the worker again"
        )
    plan = journal.rollout(c.rollout_id).plan
    request = Request(repo=req.repo, env=req.env)
    fps = desired_fingerprints(source.repo, req.repo, req.env, None)
    desired = desired_of(source.repo, fps)
    wrong = [b.agent for b in plan.boxes if b.agent in desired and
             desired[b.agent].sha != b.target_sha]  # fmt: skip
    missing = [a for a in plan.agents if a not in desired]
    if wrong or missing:
        raise WorkerRefused(
            f"rollout {c.rollout_id}: this repo renders other bytes for "
            f"{', '.join((wrong + missing)[:5])} than the plan (another reconciler build?)"
        )
    link = Link(source, req.repo)
    try:
        moved = {
            b.agent: source.repo.agents[b.agent].agent.model_copy(
                update={"config_path": b.moved_from}
            )
            for b in plan.boxes
            if b.moved
        }
        try:
            targets = targets_for(source, plan, desired, link, request, moved)
        except ApplyRefused as exc:
            raise WorkerRefused(f"rollout {c.rollout_id}: {exc}") from None
        options = options_from(
            c.options, rollout_id=c.rollout_id, holder=holder,
            fleet_key=fleet_key(fleet, req.repo, req.env),
        )  # fmt: skip
        driver = Driver(
            plan, targets, options, clock=SystemClock(), reporter=_Quiet(tell), journal=journal,
            serving=True,
        )  # fmt: skip
        slots = req.slots or options.parallel
        tell(f"rollout {c.rollout_id} of {c.fleet_id} at {c.revision[:12]}: serving, "
             f"{slots} box(es) at once")  # fmt: skip
        try:
            with journal.batch():
                return await serve(queue, c, driver, name=holder, slots=slots, stop=stop,
                                   commit=journal.commit, tell=tell,
                                   orphaned=_orphaned(req))  # fmt: skip
        finally:
            await driver.keeper.close()
    finally:
        await link.close()


def _orphaned(req: WorkerRequest) -> Callable[[], bool]:
    """With --rollout: whether the process that started this worker (`apply --workers`'s
    coordinator, or a shell) is gone, so a killed coordinator's workers leave at once."""
    if req.rollout_id is None:
        return lambda: False
    parent = os.getppid()
    return lambda: os.getppid() != parent


class _Quiet:
    """A worker's reporter: failures and warnings go to its log, the rest is the
    coordinator's to tell."""

    LOUD = frozenset({"box.failed", "box.restore_failed", "warning", "internal.error"})

    def __init__(self, tell: Tell) -> None:
        self.tell = tell

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        if kind in self.LOUD:
            self.tell(f"{kind}: {json.dumps(dict(fields), sort_keys=True)}")
