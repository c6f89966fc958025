"""The rollout driver: the I/O shell around the pure machine (httpcore around h11).

It asks `machine.step()` for commands, runs them (box operations as tasks, at
most the machine's `parallel` at once, each under a timeout), journals an
intent before each command and step and its result after, feeds the results
back as events, and tells a `Reporter` what happens. It holds no rollout logic
of its own: which box next, when to watch, when to roll back is the machine's.

Every step boundary has a name in `BOUNDARIES`; `Driver.on_boundary` is called
at each one (the journal records it; the crash-resume tests of the next issue
stop the process there). The journal runs in a batch: its records are committed
together at the durability boundaries (journal/sqlite.py says which), each
told to `on_boundary` as `journal.commit` (before) and `journal.committed` (after).
Box operations are idempotent and guarded by the stamp compare-and-swap
(boxops.py), so running one again after a crash is safe.
Time goes through a `Clock` (`now`, `sleep`), so tests soak for a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from reconciler.engine import boxops
from reconciler.engine.boxops import BoxHandle, BoxOpError
from reconciler.engine.clock import SystemClock
from reconciler.engine.gaterun import GateRunner, figures_json
from reconciler.engine.keeper import LeaseKeeper
from reconciler.engine.remote import BoxDone, RemoteBoxes
from reconciler.engine.rules import RulesOutcome
from reconciler.engine.steps import (
    ApplyJob,
    Boundary,
    Crew,
    RestoreJob,
    apply_box,
    clear_former,
    restore_box,
    restore_moved_box,
)
from reconciler.journal.base import Holder, Journal
from reconciler.journal.liveness import HEARTBEAT_S
from reconciler.model.box import ContractError, Health
from reconciler.plan.model import Delivery, Plan
from reconciler.render.stamp import SecretState
from reconciler.rollout.clock import Clock
from reconciler.rollout.commands import (
    ApplyBox,
    CancelChecks,
    Command,
    Finish,
    Preflight,
    RestoreBox,
    RunGates,
    Soak,
    Watch,
    WriteIncident,
)
from reconciler.rollout.events import (
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    Event,
    GateFigure,
    GatesFailed,
    GatesPassed,
    Interrupted,
    PreflightFailed,
    PreflightPassed,
    SoakOver,
    Started,
    WatchdogFailed,
    WatchdogPassed,
)
from reconciler.rollout.figures import history_figures
from reconciler.rollout.machine import step
from reconciler.rollout.phases import Outcome, Phase
from reconciler.rollout.reporter import JsonValue, Reporter
from reconciler.rollout.runrecord import RunRecord
from reconciler.rollout.state import BoxStatus, Rollout
from reconciler.rollout.watchdog import (
    Judgement,
    Limits,
    Sample,
    Verdict,
    judge,
    soak_over,
    watchdog_figure,
)
from reconciler.transport.base import TransportError

# Every step boundary of a rollout, by name, in order. The journal records an intent
# before and a result after each; crash-resume (next issue) stops and restarts at them.
BOUNDARIES: Final = (
    "rollout.begin",
    "preflight",
    "apply.lease",
    "apply.stamp-check",
    "apply.write",
    "apply.secrets",
    "apply.activate",
    "apply.verify",
    "apply.stamp",
    "apply.release",
    "watch",
    "soak",
    "gates",
    "restore.lease",
    "restore.write",
    "restore.secrets",
    "restore.activate",
    "restore.verify",
    "restore.stamp",
    "restore.release",
    "incident",
    "rollout.finish",
)

# A done move's old path being cleared (after the journal recorded the rollout done): a
# kill there leaves the old path's stamp (removed last) for `reconcile resume` to finish.
MOVE_BOUNDARIES: Final = ("move.lease", "move.clear", "move.release")
# Just before and just after each commit of the journal's batch (the durability boundaries).
JOURNAL_BOUNDARIES: Final = ("journal.commit", "journal.committed")


@dataclass(frozen=True, slots=True)
class Target:
    """What the rollout puts on one box: its config bytes and its secrets file (or None)."""

    handle: BoxHandle
    data: bytes
    secrets: bytes | None = None
    secrets_fingerprint: str | None = None
    secret_state: SecretState | None = None  # what the stamp records (None: derived)
    rotation_done: frozenset[str] = frozenset()  # rotation marks this rollout clears
    former: BoxHandle | None = None  # a move: the same box at its old config path


@dataclass(frozen=True, slots=True)
class Options:
    """How this rollout runs: identity, limits and timeouts."""

    rollout_id: str  # replaced by the journal's id when a journal is given
    holder: str  # user@host pid N: written into every lease
    revision: str  # what stamps record: sha, or sha+dirty-<hash>
    fleet_id: str
    parallel: int = 32
    history_keep: int = 5
    verify_timeout_s: float = 60.0
    lease_ttl_s: float = 900.0
    box_timeout_s: float = 180.0
    watchdog: Limits = field(default_factory=Limits)
    soak_interval_s: float = 1.0
    fence: int = 0  # this rollout's fencing number (render.stamp.next_fence)
    lease_heartbeat_s: float = HEARTBEAT_S  # how often held box leases are renewed
    allowed_paths: tuple[str, ...] = ()  # where agents' files may be written (empty: unchecked)
    # A failed gate blocks the revision on the boxes; not for a secret rotation, whose
    # verdict condemns the new value (rolled back), never the config revision.
    verdict_blocks: bool = True
    fleet_key: bytes | None = field(default=None, repr=False)  # names kept secrets (HMAC)


@dataclass
class RunResult:
    """How the rollout ended, for the CLI."""

    outcome: Outcome
    rollout_id: str
    state: Rollout
    incident: dict[str, str] = field(default_factory=dict)  # format -> path
    left_behind: tuple[str, ...] = ()
    internal_errors: tuple[str, ...] = ()  # unexpected errors met (each names its traceback)
    rules: RulesOutcome | None = None  # the alert rules' last step (None: nothing to ship)

    @property
    def exit_code(self) -> int:
        """The outcome's code; 3 when the agents are done but the alert rules were not
        shipped (refused by Prometheus and restored, or the box failed)."""
        if self.outcome is Outcome.DONE and self.rules is not None and not self.rules.ok:
            return 3
        return self.outcome.exit_code


IncidentWriter = Callable[[RunRecord, WriteIncident], dict[str, str]]
BoundaryHook = Callable[[str, str | None], None]  # (boundary, agent): told before each step
# Keeps the traceback of an unexpected error (a bug of ours, not the config) and says where.
InternalErrorSink = Callable[[str, str], str | None]  # (rollout id, traceback text) -> path


class Driver:
    """Runs one plan against the boxes; `run()` returns how it ended."""

    def __init__(
        self,
        plan: Plan,
        targets: Mapping[str, Target],
        options: Options,
        *,
        clock: Clock,
        reporter: Reporter,
        journal: Journal | None = None,
        preflight: Callable[[], Any] | None = None,
        write_incident: IncidentWriter | None = None,
        pre_shas: Mapping[str, str | None] | None = None,
        on_rollout_id: Callable[[str], None] | None = None,
        internal_error: InternalErrorSink | None = None,
        gate_runner: GateRunner | None = None,
        on_boundary: BoundaryHook | None = None,
        committed_at: float | None = None,
        remote: RemoteBoxes | None = None,
        serving: bool = False,
    ) -> None:
        """Every collaborator comes in here; nothing is assigned after construction.

        `gate_runner` measures the metric gates (None: the watchdog only); `on_boundary`
        is told before each journaled step; `committed_at` is a revert commit's time.
        `remote`: box operations go to worker processes (engine/workers.py) instead of
        running here. `serving`: this driver is a worker's (`apply_here`/`restore_here` are
        called for another process's rollout; `run` is not).
        """
        self.plan = plan
        self.targets = targets
        self.opts = options
        self.clock = clock
        self.reporter = reporter
        self.journal = journal
        self._preflight = preflight
        self.on_rollout_id = on_rollout_id
        self._write_incident = write_incident
        self._internal_error = internal_error
        self.internal_errors: list[str] = []  # one line each, with the traceback's path
        self._marking: asyncio.Task[None] | None = None  # blocked_revision, before restores
        self._flowing: set[str] = set()  # seen processing (or idle) in this wave's soak
        self.state = Rollout.start(plan, pre_shas)
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._checks: set[asyncio.Task[None]] = set()
        self._interrupted = False
        self._samples: dict[str, Sample] = {}
        self._soak_problems: dict[str, Judgement] = {}
        # the soak's last watchdog pass (when, verdicts): reused by the gates right after it
        self._last_soak_pass: tuple[datetime, dict[str, Judgement]] | None = None
        self._old_secrets: dict[str, bytes | None] = {}
        self.record = RunRecord(
            plan=plan, rollout_id=options.rollout_id, fleet_id=options.fleet_id,
            revision=options.revision, state=self.state, started_at=clock.now(),
            committed_at=committed_at,
        )  # fmt: skip
        self.on_boundary: BoundaryHook = on_boundary or (lambda _name, _agent: None)
        self._intents: dict[tuple[str, str | None], int] = {}
        self._group_commit: asyncio.Future[None] | None = None  # the boxes' next commit
        self.gate_runner = gate_runner
        # Renews the leases this run holds, from the take to the release (a box whose
        # apply failed after a write: until its restore), while `run` runs.
        self.keeper = LeaseKeeper(clock, every_s=options.lease_heartbeat_s)
        self.realpaths = boxops.RealPaths()  # boxes sharing a login resolve a path once
        self.remote = remote
        self.serving = serving
        self._kept_remote: set[str] = set()  # boxes where a worker kept the old secrets

    # -- bookkeeping --------------------------------------------------------------------

    def note(self, kind: str, **fields: JsonValue) -> None:
        """Tell the reporter, and keep it on the timeline."""
        self.record.timeline.append((self.clock.now(), kind, dict(fields)))
        self.reporter.note(kind, fields)

    def _intent(
        self, name: str, agent: str | None, cmd: Command | None = None, **data: Any
    ) -> None:
        """Journal the intent of the step `name` (before it runs) and tell `on_boundary`."""
        if self.journal is not None and cmd is not None:
            body = {"boundary": name, **_plain(data)}
            if self.serving:  # a worker's step: who ran it (a box taken over has two)
                body["by"] = self.opts.holder
            rid = self.opts.rollout_id
            self._intents[(name, agent)] = self.journal.record_intent(rid, agent, cmd, body)
        self.on_boundary(name, agent)

    def _result(
        self, name: str, agent: str | None, cmd: Command, *, ok: bool = True, **data: Any
    ) -> None:
        """Journal the result of the step `name` (after it ran), closing its intent."""
        key = (name, agent)
        if self.journal is not None and key in self._intents:
            body = {"boundary": name, "ok": ok, **_plain(data)}
            self.journal.record_result(self.opts.rollout_id, self._intents.pop(key), ok=ok,
                                       data=body)  # fmt: skip

    def _commit(self) -> None:
        """A durability boundary: the journal's held records go to disk in one commit."""
        if self.journal is None or not self.journal.held:
            return
        self.on_boundary("journal.commit", None)
        self.journal.commit()
        self.on_boundary("journal.committed", None)

    async def _durable(self) -> None:
        """Wait until what is journaled so far is on disk (before a box write a resume must
        attribute): one commit, at the end of this turn of the event loop, for every box
        that asks in the meantime (a group commit)."""
        if self.journal is None or not self.journal.held:
            return
        if self._group_commit is None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()

            def commit() -> None:
                self._group_commit = None
                try:
                    self._commit()
                except Exception as exc:  # each box waiting for it raises it
                    done.set_exception(exc)
                    return
                done.set_result(None)

            loop.call_soon(commit)
            self._group_commit = done
        await asyncio.shield(self._group_commit)

    def _fail_open(self, cmd: Command, reason: str) -> None:
        """Close the agent's open intents as failed (the step that raised)."""
        agent = getattr(cmd, "agent", None)
        for name, who in [k for k in self._intents if k[1] == agent]:
            self._result(name, who, cmd, ok=False, reason=reason)

    def interrupt(self, reason: str = "interrupted by the operator (Ctrl-C)") -> None:
        """Stop between boxes and roll back (safe to call from a signal handler's callback)."""
        if not self._interrupted:
            self._interrupted = True
            self._events.put_nowait(Interrupted(reason))

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Drive the machine until Finish; every task it started is done when this returns."""
        if self.journal is not None:
            rid = self.journal.begin_rollout(
                self.plan, dict(self.state.spec.pre_shas), Holder.here()
            )
            self.opts = replace(self.opts, rollout_id=rid)
            self.record.rollout_id = rid
        if self.remote is not None:  # visible to workers before they are started
            self.remote.start(self.opts, self.note, self._here)
        if self.journal is not None and self.on_rollout_id is not None:
            self.on_rollout_id(self.opts.rollout_id)
        self._intent("rollout.begin", None)
        self.note(
            "rollout.started",
            rollout_id=self.opts.rollout_id,
            plan_id=self.plan.plan_id,
            revision=self.opts.revision,
            waves=[list(w.agents) for w in self.plan.waves],
            boxes=len(self.plan.boxes),
        )
        batch = self.journal.batch() if self.journal is not None else contextlib.nullcontext()
        try:
            with batch:
                result = await self._loop()
        finally:
            await self.keeper.close()
            if self.remote is not None:
                await self.remote.stop()
        for task in list(self._checks):
            task.cancel()
        await self._drop_kept_secrets()
        if result.outcome is Outcome.DONE:
            await self._clear_moved()
        return result

    async def _loop(self) -> RunResult:
        """Feed the machine and run its commands until one finishes the rollout."""
        result: RunResult | None = None
        async with asyncio.TaskGroup() as tg:
            pending: list[Command] = self._feed(Started(self.opts.parallel))
            while result is None:
                for cmd in pending:
                    result = self._dispatch(tg, cmd) or result
                if result is not None:
                    break
                pending = self._feed(await self._events.get())
        return result

    async def _clear_moved(self) -> None:
        """The rollout is done: each moved box's old path leaves it (only reconciler's files,
        only when the old stamp names the agent and fleet); said box by box."""

        async def clear(agent: str, former: BoxHandle) -> None:
            step_ = self.plan.box(agent)

            async def boundary(name: str, work: Awaitable[Any]) -> Any:
                self.on_boundary(f"move.{name}", agent)
                return await work

            try:
                async with asyncio.timeout(self.opts.box_timeout_s):
                    removed = await clear_former(former, self._crew(), boundary=boundary)
            except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
                why = _reason(exc, self.opts.box_timeout_s)
                self.note("warning", message=f"{agent}: moved to {step_.config_path}, but its "
                          f"old path {step_.moved_from} was not cleared: {why}; remove it by "
                          "hand")  # fmt: skip
                return
            gone = ", ".join(removed) or "nothing (the old stamp is not this agent's)"
            self.note("box.moved", agent=agent, old=step_.moved_from, new=step_.config_path,
                      removed_from_old_path=gone)  # fmt: skip

        moved = [(a, t.former) for a, t in self.targets.items()
                 if t.former is not None
                 and self.state.status(a) in (BoxStatus.APPLIED, BoxStatus.HEALTHY)]  # fmt: skip
        await asyncio.gather(*(clear(a, f) for a, f in moved))

    async def _drop_kept_secrets(self) -> None:
        """The rollout is over: the previous secrets it kept on boxes leave them."""

        async def drop(agent: str) -> None:
            h = self.targets[agent].handle
            with contextlib.suppress(TransportError, TimeoutError):
                async with asyncio.timeout(self.opts.box_timeout_s):
                    await boxops.drop_kept_secrets(h, self.opts.rollout_id, self.opts.fleet_key)

        # a copy was kept only where the secrets file changed (steps.apply_box)
        kept = {
            a
            for a, old in self._old_secrets.items()
            if old is not None and old != self.targets[a].secrets
        } | self._kept_remote
        await asyncio.gather(*(drop(a) for a in sorted(kept)))  # fmt: skip

    def _feed(self, ev: Event) -> list[Command]:
        if self.journal is not None:
            self.journal.record_event(self.opts.rollout_id, ev)
        before, wave_before = self.state.phase, self.state.current_wave
        self.state, cmds = step(self.state, ev)
        self.record.state = self.state
        if self.state.phase is not before or self.state.current_wave != wave_before:
            # a wave step ends (a wave declared done, a rollback decided): on disk before
            # the commands that follow it touch a box
            self._commit()
        if self.state.phase is Phase.ROLLING_BACK and before is not Phase.ROLLING_BACK:
            self.record.detected_at = self.clock.now()
            if not self.state.verdict:  # else told once the verdict is on the boxes
                self.note("rollback.started", trigger=self.state.trigger or "")
        if self.state.phase is Phase.APPLYING:
            wave = self.state.current_wave
            if wave is not None and wave.index not in self.record.wave_started_at:
                self.record.wave_started_at[wave.index] = self.clock.now()
                self.note("wave.started", wave=wave.index + 1, agents=list(wave.agents))
        return cmds

    def _dispatch(self, tg: asyncio.TaskGroup, cmd: Command) -> RunResult | None:
        if isinstance(cmd, Finish):
            return self._finish(cmd)
        if isinstance(cmd, CancelChecks):
            for task in list(self._checks):
                task.cancel()
            return None
        if isinstance(cmd, WriteIncident):
            self._incident(cmd)
            return None
        runner = {
            Preflight: self._run_preflight,
            ApplyBox: self._run_apply,
            RestoreBox: self._run_restore,
            Watch: self._run_watch,
            Soak: self._run_soak,
            RunGates: self._run_gates,
        }[type(cmd)]
        task = tg.create_task(self._guard(runner, cmd))
        if isinstance(cmd, Watch | Soak | RunGates):
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        return None

    async def _guard(self, runner: Any, cmd: Command) -> None:
        """Run one command and queue its event; a cancelled check sends nothing.

        An unexpected exception (a bug of ours, not a verdict on the config) never escapes:
        its traceback goes to the sink, the command's box is counted as failed (restored if
        it may hold the new config) and the rollout is interrupted, so what changed is put
        back and the revision is not blocked.
        """
        try:
            ev = await runner(cmd)
        except asyncio.CancelledError:
            if isinstance(cmd, Watch | Soak | RunGates):  # its intent gets a result, not ok
                name = {Watch: "watch", Soak: "soak", RunGates: "gates"}[type(cmd)]
                self._result(name, None, cmd, ok=False, reason="cancelled: rolling back")
                return
            raise
        except Exception as exc:
            for event in self._internal(cmd, exc):
                self._events.put_nowait(event)
            return
        if ev is not None:
            self._events.put_nowait(ev)

    def _internal(self, cmd: Command, exc: Exception) -> list[Event]:
        """The events that stand for an unexpected exception in `cmd`."""
        where = None
        text = "".join(traceback.format_exception(exc))
        if self._internal_error is not None:
            with contextlib.suppress(OSError):
                where = self._internal_error(self.opts.rollout_id, text)
        what = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
        line = f"internal error (a reconciler bug, not the config) in {type(cmd).__name__}: {what}"
        if where:
            line += f"; traceback in {where}"
        self.internal_errors.append(line)
        self.note("internal.error", message=line)
        agent = getattr(cmd, "agent", None)
        if isinstance(cmd, Preflight):
            return [PreflightFailed(line)]
        if isinstance(cmd, RestoreBox) and agent is not None:
            return [BoxRestoreFailed(agent, line)]
        events: list[Event] = []
        if isinstance(cmd, ApplyBox) and agent is not None:
            self._fail_open(cmd, line)
            events.append(BoxFailed(agent, ApplyStep.WRITE, line))  # may have written: restore
        events.append(Interrupted(line))
        return events

    # -- preflight ----------------------------------------------------------------------

    async def _run_preflight(self, _cmd: Preflight) -> Event:
        self._intent("preflight", None, _cmd)
        problem = None
        if self._preflight is not None:
            try:
                problem = await self._preflight()
            except (TransportError, BoxOpError, ContractError) as exc:
                problem = str(exc)
        self._result("preflight", None, _cmd, ok=not problem, problem=problem)
        if problem:
            self.note("preflight.failed", reason=problem)
            return PreflightFailed(problem)
        self.note("preflight.passed")
        return PreflightPassed()

    # -- apply one box ------------------------------------------------------------------

    async def _run_apply(self, cmd: ApplyBox) -> Event:
        if self.remote is not None:
            return self._told(await self.remote.apply(cmd))
        return await self.apply_here(cmd)

    async def _here(self, cmd: ApplyBox | RestoreBox, verdict_on: str | None) -> Event:
        if isinstance(cmd, ApplyBox):
            return await self.apply_here(cmd)
        return await self.restore_here(cmd, verdict_on)

    def _told(self, done: BoxDone) -> Event:
        """A box operation a worker ran: what it tells, as if it ran here."""
        ev, by = done.event, done.worker
        if done.kept_secrets:
            self._kept_remote.add(done.agent)
        if done.told:
            return ev
        if isinstance(ev, BoxApplied):
            self.note("box.applied", agent=ev.agent, wave=done.wave + 1, worker=by)
        elif isinstance(ev, BoxFailed):
            self.note("box.failed", agent=ev.agent, wave=done.wave + 1, step=str(ev.step),
                      reason=ev.reason, worker=by)  # fmt: skip
        elif isinstance(ev, BoxRestored):
            self.record.restored_shas[ev.agent] = done.pre_sha
            self.note("box.restored", agent=ev.agent, worker=by)
        elif isinstance(ev, BoxRestoreFailed):
            self.note("box.restore_failed", agent=ev.agent, reason=ev.reason, worker=by)
        return ev

    def kept_secrets(self, agent: str) -> bool:
        """This driver kept the box's previous secrets file on it (dropped at the end)."""
        old = self._old_secrets.get(agent)
        return old is not None and old != self.targets[agent].secrets

    async def apply_here(self, cmd: ApplyBox) -> Event:
        """Run one box's apply in this process (the coordinator's own, or a worker's)."""
        reached = [ApplyStep.CONNECT]  # the steps begun; the last one is where it failed
        t = self.targets[cmd.agent]
        h = t.handle
        try:
            async with asyncio.timeout(self.opts.box_timeout_s):
                await self._apply_steps(cmd, t, h, reached)
        except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
            reason = _reason(exc, self.opts.box_timeout_s)
            at = reached[-1]
            failed_at = exc.step if isinstance(exc, BoxOpError) else at
            step_ = failed_at if isinstance(failed_at, ApplyStep) else at
            if at.touched and not step_.touched:
                step_ = at  # a write began: the box may hold the new file, restore it
            self._fail_open(cmd, reason)
            if not step_.touched:
                # A box that may hold the new file keeps our lease (and its heartbeat)
                # until its restore: if this run dies first, the lease is the evidence
                # resume goes by.
                await self.keeper.drop_agent(cmd.agent)
                with contextlib.suppress(TransportError, TimeoutError):
                    async with asyncio.timeout(self.opts.box_timeout_s):
                        await boxops.release_lease(h, rollout_id=self.opts.rollout_id)
            self.note("box.failed", agent=cmd.agent, wave=cmd.wave + 1, step=str(step_),
                      reason=reason)  # fmt: skip
            return BoxFailed(cmd.agent, step_, reason)
        self.note("box.applied", agent=cmd.agent, wave=cmd.wave + 1)
        return BoxApplied(cmd.agent)

    def _crew(self) -> Crew:
        o = self.opts
        return Crew(
            holder=o.holder, rollout_id=o.rollout_id, fleet_id=o.fleet_id, clock=self.clock,
            lease_ttl_s=o.lease_ttl_s, verify_timeout_s=o.verify_timeout_s,
            history_keep=o.history_keep, fence=o.fence, fleet_key=o.fleet_key,
            keeper=self.keeper, heartbeat_s=o.lease_heartbeat_s, realpaths=self.realpaths,
        )  # fmt: skip

    def _steps(self, prefix: str, cmd: Command, agent: str) -> Boundary:
        """Journal each step of one box: intent before, result after."""

        async def boundary(name: str, work: Awaitable[Any]) -> Any:
            full = f"{prefix}.{name}"
            self._intent(full, agent, cmd)
            if name == "lease":  # the box's first write: a resume claims a torn lease by it
                await self._durable()
            out = await work
            self._result(full, agent, cmd, ok=True)
            return out

        return boundary

    async def _apply_steps(
        self, cmd: ApplyBox, t: Target, h: BoxHandle, reached: list[ApplyStep]
    ) -> None:
        agent = cmd.agent
        plan_step = self.plan.box(agent)
        job = ApplyJob(
            target_sha=cmd.target_sha, pre_sha=cmd.pre_sha, delivery=cmd.delivery,
            activation=cmd.activation, revision=self.opts.revision, data=t.data,
            stamp_sha=plan_step.stamp_sha, stamp_revision=plan_step.stamp_revision,
            secrets=t.secrets, secrets_fingerprint=t.secrets_fingerprint,
            allowed_paths=self.opts.allowed_paths, secret_state=t.secret_state,
            rotation_done=t.rotation_done,
        )  # fmt: skip

        async def old_secrets() -> bytes | None:
            if agent not in self._old_secrets:
                self._old_secrets[agent] = await h.box.read_file(h.paths.secrets)
            return self._old_secrets[agent]

        await apply_box(h, job, self._crew(), boundary=self._steps("apply", cmd, agent),
                        reached=reached, old_secrets=old_secrets, former=t.former)  # fmt: skip

    # -- restore one box ----------------------------------------------------------------

    async def _mark_blocked(self) -> None:
        """A verdict: write blocked_revision into the stamps of every box this rollout
        changed (but for boxes still being applied), before the first restore, so that a run killed
        while rolling back leaves the verdict on the boxes even without its journal."""
        o = self.opts
        if not o.verdict_blocks:  # a rotation's verdict condemns the value, not the revision
            self.note("rollback.started", trigger=self.state.trigger or "")
            return
        settled = [a for a in self.state.changed if self.state.status(a) is not BoxStatus.APPLYING]

        async def mark(agent: str) -> None:
            h = self.targets[agent].handle
            try:
                async with asyncio.timeout(self.opts.box_timeout_s):
                    await boxops.take_lease(h, holder=o.holder, rollout_id=o.rollout_id,
                                            ttl_s=o.lease_ttl_s, now=self.clock.now(),
                                            fence=o.fence)  # fmt: skip
                    now = await boxops.read_now(h)
                    s = now.stamp
                    if (
                        s is not None
                        and s.rollout_id == o.rollout_id
                        and (s.blocked_revision != o.revision)
                    ):
                        blocked = s.model_copy(update={"blocked_revision": o.revision})
                        await boxops.write_stamp(h, blocked)
                    await self.keeper.drop(h)  # its restore takes (and keeps) it again
                    await boxops.release_lease(h, rollout_id=o.rollout_id, taken=True)
            except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
                # its restore still stamps the verdict; only a kill before then loses it
                reason = _reason(exc, self.opts.box_timeout_s)
                self.note("warning", message=f"{agent}: could not mark the revision blocked "
                          f"before restoring: {reason}")  # fmt: skip

        await asyncio.gather(*(mark(a) for a in settled))
        self.note("rollback.started", trigger=self.state.trigger or "", blocked=o.revision)

    async def _run_restore(self, cmd: RestoreBox) -> Event:
        if self.state.verdict:
            if self._marking is None:
                self._marking = asyncio.ensure_future(self._mark_blocked())
            await asyncio.shield(self._marking)
        verdict_on = self.opts.revision if self.state.verdict and self.opts.verdict_blocks else None
        if self.remote is not None:
            return self._told(await self.remote.restore(cmd, verdict_on))
        return await self.restore_here(cmd, verdict_on)

    async def restore_here(self, cmd: RestoreBox, verdict_on: str | None) -> Event:
        """Put one box back in this process (`verdict_on`: the revision a verdict blocks)."""
        h = self.targets[cmd.agent].handle
        try:
            async with asyncio.timeout(self.opts.box_timeout_s):
                await self._restore_steps(cmd, h, verdict_on)
        except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
            reason = _reason(exc, self.opts.box_timeout_s)
            self._fail_open(cmd, reason)
            self.note("box.restore_failed", agent=cmd.agent, reason=reason)
            return BoxRestoreFailed(cmd.agent, reason)
        self.record.restored_shas[cmd.agent] = cmd.pre_sha
        self.note("box.restored", agent=cmd.agent)
        return BoxRestored(cmd.agent)

    async def _restore_steps(self, cmd: RestoreBox, h: BoxHandle, verdict_on: str | None) -> None:
        plan_step = self.plan.box(cmd.agent)
        # a worker that did not apply this box itself finds the old secrets kept on it
        look = self.serving and cmd.agent not in self._old_secrets
        job = RestoreJob(
            pre_sha=cmd.pre_sha, pre_revision=plan_step.stamp_revision,
            activation=cmd.activation, old_secrets=self._old_secrets.get(cmd.agent),
            look_for_kept_secrets=look, verdict_on=verdict_on,
        )  # fmt: skip
        boundary = self._steps("restore", cmd, cmd.agent)
        former = self.targets[cmd.agent].former
        if former is not None:  # a move: the old path was left as it was
            await restore_moved_box(h, former, job, self._crew(), target_sha=plan_step.target_sha,
                                    boundary=boundary)  # fmt: skip
            return
        await restore_box(h, job, self._crew(), boundary=boundary)

    # -- checks -------------------------------------------------------------------------

    async def _sample(self, agent: str) -> tuple[Health | None, str | None]:
        h = self.targets[agent].handle
        try:
            return await boxops.read_health(h), None
        except (TransportError, ContractError) as exc:
            return None, str(exc)

    async def _judge(self, agent: str) -> Judgement:
        health, error = await self._sample(agent)
        now = self.clock.now()
        verdict = judge(
            health,
            expected_sha=self.plan.box(agent).target_sha,
            now=now,
            previous=self._samples.get(agent),
            limits=self.opts.watchdog,
            error=error,
        )
        if health is not None and (agent not in self._samples or verdict.flowing):
            self._samples[agent] = Sample(health, now)
        return verdict

    async def _run_watch(self, cmd: Watch) -> Event | None:
        self._intent("watch", None, cmd, wave=cmd.wave, agents=list(cmd.agents))
        verdicts = await asyncio.gather(*(self._judge(a) for a in cmd.agents))
        for agent, j in zip(cmd.agents, verdicts, strict=True):
            if j.ok:
                self.note("watchdog.passed", agent=agent)
                self._events.put_nowait(WatchdogPassed(agent))
            else:
                self.note("watchdog.failed", agent=agent, verdict=str(j.verdict), reason=j.reason)
                self._events.put_nowait(WatchdogFailed(agent, j.verdict, j.reason))
        self._result("watch", None, cmd)
        return None

    def _watched(self) -> list[str]:
        return list(self.state.agents_in(BoxStatus.HEALTHY))

    def _metric_gates(self, wave: int) -> bool:
        """The wave runs metric gates: it has some (restore waves have none) and a runner."""
        return self.gate_runner is not None and bool(self.plan.waves[wave].gates)

    async def _run_soak(self, cmd: Soak) -> Event:
        """Watch the wave for its soak, and at least the stall window; a problem ends it.

        The stall window applies even when the soak is 0 (a revert's waves): a stalled
        agent is only seen as such after it. A wave whose soak is over ends as soon as
        every one of its boxes has been seen working (or idle) since its change.
        """
        self._intent("soak", None, cmd, wave=cmd.wave, seconds=cmd.seconds)
        if self._metric_gates(cmd.wave) and self.gate_runner is not None:
            await self.gate_runner.open(cmd.wave, self.note)
        window = self.opts.watchdog.stall_window_s
        start = self.clock.now()
        self._flowing.clear()
        # With no soak to wait out, the wave may end at its first pass that sees every box
        # working: look soon, then back off to the usual interval.
        interval = self.opts.soak_interval_s
        pause = interval if cmd.seconds > 0 else interval / 4
        while True:
            elapsed = (self.clock.now() - start).total_seconds()
            agents = self._watched()
            if soak_over(elapsed, soak_s=cmd.seconds, stall_window_s=window, watched=agents,
                         flowing=self._flowing):  # fmt: skip
                break
            left = max(cmd.seconds, window) - elapsed
            if cmd.seconds > elapsed:  # the soak asked for (the stall window is not it)
                self.note("soak.tick", wave=cmd.wave + 1,
                          remaining_s=round(cmd.seconds - elapsed, 1))  # fmt: skip
            await self.clock.sleep(min(pause, left))
            pause = min(pause * 2, interval)
            agents = self._watched()
            verdicts = await asyncio.gather(*(self._judge(a) for a in agents))
            self._last_soak_pass = (self.clock.now(), dict(zip(agents, verdicts, strict=True)))
            bad = {a: j for a, j in zip(agents, verdicts, strict=True) if not j.ok}
            self._flowing.update(a for a, j in zip(agents, verdicts, strict=True) if j.flowing)
            for agent, j in bad.items():
                self.note("soak.problem", agent=agent, verdict=str(j.verdict), reason=j.reason)
            self._soak_problems.update(bad)
            if bad:
                break
        self._result("soak", None, cmd)
        return SoakOver(cmd.wave)

    def _fresh_soak_pass(self, agents: list[str]) -> list[Judgement] | None:
        """The soak's last watchdog pass over exactly `agents`, when it ended just now (no
        wait since): the gates' watchdog check reuses it instead of reading every box's
        health again. None: read again."""
        if self._last_soak_pass is None:
            return None
        when, seen = self._last_soak_pass
        self._last_soak_pass = None
        age = (self.clock.now() - when).total_seconds()
        if set(seen) != set(agents) or age > self.opts.soak_interval_s / 2:
            return None
        return [seen[a] for a in agents]

    async def _run_gates(self, cmd: RunGates) -> Event:
        """The watchdog, then the metric gates (gaterun.py) on the changed, healthy agents."""
        self._intent("gates", None, cmd, wave=cmd.wave)
        agents = self._watched()
        verdicts = self._fresh_soak_pass(agents) or await asyncio.gather(
            *(self._judge(a) for a in agents)
        )
        problems = dict(self._soak_problems)
        problems.update({a: j for a, j in zip(agents, verdicts, strict=True) if not j.ok})
        self._soak_problems.clear()
        figures: tuple[GateFigure, ...] = (
            GateFigure("watchdog", *watchdog_figure(problems, len(agents))),
        )
        as_json: list[JsonValue] = [
            {"gate": f.gate, "ok": f.ok, "detail": f.detail} for f in figures
        ]
        if self._metric_gates(cmd.wave) and self.gate_runner is not None and not problems:
            gated = await self.gate_runner.judge(cmd.wave, set(self.state.changed), agents,
                                                 self.note)  # fmt: skip
            figures += tuple(GateFigure(v.gate, v.ok, v.detail()) for v in gated)
            as_json += figures_json(gated)
        elif cmd.gates and self.gate_runner is None:
            self.note(
                "warning",
                message=f"gates {', '.join(cmd.gates)} are not evaluated (metric gates are "
                "off); the watchdog is the gate",
            )
        ok = all(f.ok for f in figures)
        self._result("gates", None, cmd, ok=ok,
                       figures=[f"{f.gate}: {f.detail}" for f in figures])  # fmt: skip
        if not ok:
            self.note("gates.failed", wave=cmd.wave + 1, figures=as_json)
            return GatesFailed(cmd.wave, figures)
        self.note("gates.passed", wave=cmd.wave + 1, figures=as_json)
        return GatesPassed(cmd.wave, figures)

    # -- the end ------------------------------------------------------------------------

    def _incident(self, cmd: WriteIncident) -> None:
        self._intent("incident", None, cmd)
        self.record.finished_at = self.clock.now()
        self._pending_incident = cmd

    def _revert_summary(self) -> dict[str, Any]:
        """A revert (every box gets back a config it ran) is marked, with its commit time."""
        boxes = self.plan.boxes
        if boxes and all(b.delivery is Delivery.RESTORE for b in boxes):
            return {"revert": True, "committed_at": self.record.committed_at}
        return {}

    def _finish(self, cmd: Finish) -> RunResult:
        self.record.finished_at = self.record.finished_at or self.clock.now()
        paths: dict[str, str] = {}
        pending: WriteIncident | None = getattr(self, "_pending_incident", None)
        if pending is not None:  # its intent gets a result even with no incident writer
            if self._write_incident is not None:
                paths = self._write_incident(self.record, pending)
            self._result("incident", None, pending, paths=paths)
            if self._write_incident is not None:
                self.note("incident.written", **paths)
        self._intent("rollout.finish", None)
        if self.journal is not None:
            summary = {
                "revision": self.opts.revision,
                "left_behind": list(cmd.left_behind),
                "trigger": self.state.trigger,
                "verdict": self.state.verdict,
                "internal_errors": self.internal_errors,
                "incident": paths or None,
                **self._revert_summary(),
                **history_figures(self.record),
            }
            self.journal.finish(self.opts.rollout_id, cmd.outcome, summary)
        self.note(
            "rollout.finished",
            outcome=str(cmd.outcome),
            exit_code=cmd.outcome.exit_code,
            left_behind=list(cmd.left_behind),
        )
        return RunResult(
            cmd.outcome, self.opts.rollout_id, self.state, paths, cmd.left_behind,
            tuple(self.internal_errors),
        )  # fmt: skip


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """Journal-safe values: str, numbers, bools, None, lists and dicts of those."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, str | int | float | bool) else str(v) for v in value]
        elif isinstance(value, dict):
            out[key] = {str(k): str(v) for k, v in value.items()}
        elif isinstance(value, str | int | float | bool | None):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"the box operation did not finish within {timeout:g}s"
    if isinstance(exc, BoxOpError):
        return exc.message
    return str(exc)


__all__ = [
    "BOUNDARIES",
    "JOURNAL_BOUNDARIES",
    "MOVE_BOUNDARIES",
    "Driver",
    "Options",
    "RunResult",
    "SystemClock",
    "Target",
    "Verdict",
]
