"""One rollout spread over worker processes: the coordinator's side and the worker's loop.

The coordinator's `Driver` is given a `QueuedBoxes`: each ApplyBox and RestoreBox the
machine asks for becomes a `box_work` row (journal/pgwork.py), and its result comes back
as the event a worker recorded. The coordinator keeps the machine, the watchdog, the
gates and the verdict; it beats its heartbeat every `BEAT_S`. A box operation no worker
claims within `UNCLAIMED_S` (or whose worker died and none is left to take it over) is
claimed and run by the coordinator itself, so a rollout never waits on workers that are
gone.

A worker (`serve`) claims the rollout's queued rows while it has free slots, runs each
with its own `Driver` (`apply_here`/`restore_here`: the same box steps, leases and
journal records as a one-process rollout), renews each claim every `CLAIM_TTL_S / 3`,
and records the result. Claims expire after `CLAIM_TTL_S`, shorter than the box lease's
heartbeat: a killed worker's box is claimed again by another worker, which takes the
box lease over (it belongs to the rollout: its id and fence, not to one process) and
runs the operation again (box steps are idempotent behind the stamp's compare-and-swap).
A worker whose claim was taken from it (it stalled past the expiry) has that box's task
cancelled as soon as a renewal is refused, and records nothing. A worker leaves a rollout
whose coordinator is done, or whose heartbeat is older than `COORDINATOR_STALE_S` (killed:
the next `apply` settles it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from reconciler.engine.driver import Driver, Options
from reconciler.engine.remote import BoxDone, Here, Note
from reconciler.journal.liveness import HEARTBEAT_S, STALE_AFTER_S
from reconciler.journal.pgwork import Claim, Coordinator, WorkQueue
from reconciler.rollout.commands import ApplyBox, RestoreBox
from reconciler.rollout.events import ApplyStep, BoxFailed, BoxRestoreFailed, Event
from reconciler.rollout.records import JSONObject, command_from_record, event_from_record, to_record
from reconciler.rollout.watchdog import Limits

BEAT_S: Final = 2.0  # the coordinator's heartbeat in the coordinators table
# A coordinator this silent is gone (as a lock holder's heartbeat: a busy coordinator on a
# loaded machine may miss a few beats; a worker leaving it too early stalls its rollout).
COORDINATOR_STALE_S: Final = STALE_AFTER_S
CLAIM_TTL_S: Final = 0.8 * HEARTBEAT_S  # a claim not renewed this long is free again
UNCLAIMED_S: Final = 30.0  # work nobody claims this long: the coordinator runs it
POLL_S: Final = 0.02  # how soon the coordinator looks for results after a post or a result
POLL_MAX_S: Final = 0.32  # ... backing off to this while its looks find nothing new
IDLE_POLL_S: Final = 0.25  # a worker with nothing to do looks for work this often
# Rows one worker claims per look: the others get their share of a wave's work (a worker
# claiming every queued row at once would leave the other processes idle).
CLAIM_BURST: Final = 4

# The options a worker needs to run the coordinator's box operations (never the fleet key:
# the worker derives it from the repo, as the coordinator did).
_SHARED: Final = (
    "revision", "fleet_id", "parallel", "history_keep", "verify_timeout_s", "lease_ttl_s",
    "box_timeout_s", "fence", "lease_heartbeat_s", "verdict_blocks",
)  # fmt: skip


def options_json(o: Options) -> JSONObject:
    """What a worker is told of the coordinator's options."""
    out: JSONObject = {name: getattr(o, name) for name in _SHARED}
    out["allowed_paths"] = list(o.allowed_paths)
    return out


def options_from(data: JSONObject, *, rollout_id: str, holder: str, fleet_key: bytes | None
                 ) -> Options:  # fmt: skip
    """The coordinator's options for a worker: its own holder, the repo's fleet key."""
    paths = data.get("allowed_paths")
    return Options(
        rollout_id=rollout_id, holder=holder, revision=str(data["revision"]),
        fleet_id=str(data["fleet_id"]), parallel=int(str(data["parallel"])),
        history_keep=int(str(data["history_keep"])),
        verify_timeout_s=float(str(data["verify_timeout_s"])),
        lease_ttl_s=float(str(data["lease_ttl_s"])),
        box_timeout_s=float(str(data["box_timeout_s"])), watchdog=Limits(),
        fence=int(str(data["fence"])), lease_heartbeat_s=float(str(data["lease_heartbeat_s"])),
        allowed_paths=tuple(str(p) for p in paths) if isinstance(paths, list) else (),
        verdict_blocks=bool(data["verdict_blocks"]), fleet_key=fleet_key,
    )  # fmt: skip


def done_json(done: BoxDone) -> JSONObject:
    return {
        "event": to_record(done.event), "worker": done.worker, "wave": done.wave,
        "pre_sha": done.pre_sha, "kept_secrets": done.kept_secrets,
    }  # fmt: skip


def done_from(data: JSONObject) -> BoxDone:
    ev = data["event"]
    if not isinstance(ev, dict):
        raise TypeError("a box_work result without its event")
    event = event_from_record(ev)
    pre = data.get("pre_sha")
    return BoxDone(
        agent=str(getattr(event, "agent", "")), event=event, worker=str(data.get("worker")),
        wave=int(str(data.get("wave", 0))), pre_sha=pre if isinstance(pre, str) else None,
        kept_secrets=bool(data.get("kept_secrets")),
    )  # fmt: skip


@dataclass(eq=False)
class _Due:
    work_id: int
    cmd: ApplyBox | RestoreBox
    verdict_on: str | None
    posted: float
    future: asyncio.Future[BoxDone]


class QueuedBoxes:
    """The coordinator's `RemoteBoxes`: box operations through the shared work queue."""

    def __init__(self, queue: WorkQueue, *, version: str, holder: str,
                 unclaimed_s: float = UNCLAIMED_S) -> None:  # fmt: skip
        self.queue = queue
        self.version = version
        self.holder = holder
        self.unclaimed_s = unclaimed_s
        self.rollout_id = ""
        self._due: dict[int, _Due] = {}
        self._wake = asyncio.Event()
        self._pause = POLL_S  # the wait before the next look for results
        self._tasks: list[asyncio.Task[None]] = []
        self._here: Here | None = None
        self._note: Note | None = None
        self.ran_here = 0  # box operations the coordinator ran itself
        self.ran_by: Counter[str] = Counter()  # box operations each worker ran, by its name
        self.retired = False  # the rollout is over: workers leaving it now are done

    def start(self, options: Options, note: Note, here: Here) -> None:
        self.rollout_id = options.rollout_id
        self._here, self._note = here, note
        self.queue.announce(
            options.rollout_id, fleet_id=options.fleet_id, version=self.version,
            revision=options.revision, options=options_json(options),
        )  # fmt: skip
        self._tasks = [asyncio.ensure_future(self._poll()), asyncio.ensure_future(self._beat())]

    async def apply(self, cmd: ApplyBox) -> BoxDone:
        return await self._post("apply", cmd, None)

    async def restore(self, cmd: RestoreBox, verdict_on: str | None) -> BoxDone:
        return await self._post("restore", cmd, verdict_on)

    async def _post(self, kind: str, cmd: ApplyBox | RestoreBox, verdict_on: str | None
                    ) -> BoxDone:  # fmt: skip
        work_id = self.queue.post(self.rollout_id, cmd.agent, kind, to_record(cmd),
                                  {"verdict_on": verdict_on})  # fmt: skip
        future: asyncio.Future[BoxDone] = asyncio.get_running_loop().create_future()
        self._due[work_id] = _Due(work_id, cmd, verdict_on, time.monotonic(), future)
        self._pause = POLL_S
        self._wake.set()
        return await future

    async def _poll(self) -> None:
        """Feed the results workers recorded to their waiting operations. Each look is a
        query over every due id, on the coordinator's one database session: soon after a
        post or a result, less often (up to POLL_MAX_S) while looks find nothing."""
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._pause)
            found = self.queue.results(list(self._due))
            self._pause = POLL_S if found else min(self._pause * 2, POLL_MAX_S)
            for work_id, data in found.items():
                due = self._due.pop(work_id, None)
                if due is not None and not due.future.done():
                    done = done_from(data)
                    self.ran_by[done.worker] += 1
                    due.future.set_result(done)
            now = time.monotonic()
            for due in [d for d in self._due.values() if now - d.posted > self.unclaimed_s]:
                due.posted = now  # looked at again after another wait
                claim = self.queue.claim_id(due.work_id, self.holder, ttl_s=CLAIM_TTL_S)
                if claim is not None:
                    self._due.pop(due.work_id, None)
                    self._tasks.append(asyncio.ensure_future(self._run_here(due, claim)))

    async def _run_here(self, due: _Due, claim: Claim) -> None:
        """No worker took it: the coordinator runs it (its claim renewed meanwhile)."""
        if self._here is None or self._note is None:
            raise RuntimeError("QueuedBoxes.start was not called")
        self.ran_here += 1
        self._note("warning", message=f"{due.cmd.agent}: no worker took its {claim.kind} within "
                   f"{self.unclaimed_s:g}s; the coordinator runs it")  # fmt: skip
        keep = asyncio.ensure_future(_renewing(self.queue, claim))
        try:
            ev = await self._here(due.cmd, due.verdict_on)
        except Exception as exc:  # the box counts as failed
            ev = _failed(due.cmd, f"internal error running it in the coordinator: {exc}")
        finally:
            keep.cancel()
        done = BoxDone(due.cmd.agent, ev, self.holder, getattr(due.cmd, "wave", 0),
                       due.cmd.pre_sha, told=True)  # fmt: skip
        self.queue.finish(claim, done_json(done))
        if not due.future.done():
            due.future.set_result(done)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            with contextlib.suppress(Exception):  # a missed beat: the next one counts
                self.queue.beat(self.rollout_id)

    async def stop(self) -> None:
        self.retired = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.rollout_id:
            self.queue.retire(self.rollout_id)


def _failed(cmd: ApplyBox | RestoreBox, reason: str) -> Event:
    if isinstance(cmd, ApplyBox):  # it may have written: the machine restores it
        return BoxFailed(cmd.agent, ApplyStep.WRITE, reason)
    return BoxRestoreFailed(cmd.agent, reason)


async def _renewing(queue: WorkQueue, claim: Claim, lost: Callable[[], None] | None = None
                    ) -> None:  # fmt: skip
    """Renew `claim` until cancelled; tell `lost` (and stop) once it is not ours."""
    while True:
        await asyncio.sleep(CLAIM_TTL_S / 3)
        try:
            ours = queue.renew(claim, ttl_s=CLAIM_TTL_S)
        except Exception:  # the database unreachable: the claim may expire
            ours = True  # keep going; a refused renewal, not an error, means lost
        if not ours:
            if lost is not None:
                lost()
            return


# -- the worker ---------------------------------------------------------------------------


@dataclass
class Served:
    """What one worker did for one rollout."""

    rollout_id: str
    boxes: int = 0
    lost: int = 0  # claims taken over by another worker before this one finished
    reassigned: int = 0  # claims this worker took over from one that died
    ended: str = ""  # why it left: done, coordinator gone, stopped
    agents: list[str] = field(default_factory=list)


async def serve(
    queue: WorkQueue,
    coordinator: Coordinator,
    driver: Driver,
    *,
    name: str,
    slots: int,
    stop: asyncio.Event,
    commit: Callable[[], object],
    tell: Callable[[str], None],
    orphaned: Callable[[], bool] = lambda: False,
) -> Served:
    """Claim and run the rollout's box operations until it is done, its coordinator is
    gone (or `orphaned()`: the process that started this worker died), or `stop` is set;
    the boxes already claimed are finished first."""
    rid = coordinator.rollout_id
    served = Served(rid)
    running: set[asyncio.Task[None]] = set()
    checked = 0.0
    pause = POLL_S
    while not stop.is_set():
        if orphaned():
            served.ended = "the coordinator that started this worker is gone"
            break
        if time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            now = queue.coordinator(rid)
            if now is None or now.done:
                served.ended = "done"
                break
            if now.age_s > COORDINATOR_STALE_S:
                served.ended = f"the coordinator is gone (no heartbeat for {now.age_s:.0f}s)"
                break
        took = 0
        while len(running) < slots and took < CLAIM_BURST:
            claim = queue.claim(rid, name, ttl_s=CLAIM_TTL_S)
            if claim is None:
                break
            took += 1
            if claim.attempts > 1:
                served.reassigned += 1
                tell(f"{claim.agent}: taking over its {claim.kind} (attempt {claim.attempts})")
            task = asyncio.ensure_future(_run_claim(queue, claim, driver, name, served, commit))
            running.add(task)
            task.add_done_callback(running.discard)
        pause = POLL_S if took or running else min(pause * 2, IDLE_POLL_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
    if stop.is_set():
        served.ended = "stopped"
    if running:
        await asyncio.gather(*running, return_exceptions=True)
    return served


async def _run_claim(
    queue: WorkQueue,
    claim: Claim,
    driver: Driver,
    name: str,
    served: Served,
    commit: Callable[[], object],
) -> None:
    cmd = command_from_record(claim.command)
    if not isinstance(cmd, ApplyBox | RestoreBox):
        raise TypeError(f"box_work {claim.work_id} holds a {type(cmd).__name__}")
    verdict = claim.extra.get("verdict_on")
    verdict_on = verdict if isinstance(verdict, str) else None
    work: asyncio.Task[Event] = asyncio.ensure_future(
        driver.apply_here(cmd) if isinstance(cmd, ApplyBox)
        else driver.restore_here(cmd, verdict_on)
    )  # fmt: skip
    lost = False

    def on_lost() -> None:
        nonlocal lost
        lost = True
        work.cancel()

    keep = asyncio.ensure_future(_renewing(queue, claim, on_lost))
    try:
        ev = await work
    except asyncio.CancelledError:
        if not lost:
            raise
        served.lost += 1
        await driver.keeper.drop_agent(cmd.agent)  # the new claimer keeps its lease now
        return
    except Exception as exc:  # the box's failure, not lost
        ev = _failed(cmd, f"internal error in worker {name}: {type(exc).__name__}: {exc}")
    finally:
        keep.cancel()
    with contextlib.suppress(Exception):  # the results are in box_work even so
        commit()
    kept = isinstance(cmd, ApplyBox) and driver.kept_secrets(cmd.agent)
    done = BoxDone(cmd.agent, ev, name, getattr(cmd, "wave", 0), cmd.pre_sha, kept)
    if queue.finish(claim, done_json(done)):
        served.boxes += 1
        served.agents.append(cmd.agent)
    else:
        served.lost += 1


__all__ = [
    "BEAT_S",
    "CLAIM_TTL_S",
    "COORDINATOR_STALE_S",
    "QueuedBoxes",
    "Served",
    "done_from",
    "done_json",
    "options_from",
    "options_json",
    "serve",
]
