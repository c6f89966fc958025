"""Resume after a crash: find the rollout cut short, read its boxes, finish or roll back.

    find (journal, else the boxes' stamps and leases) -> read every box of it
    -> decide (recovery.py) -> per box to restore: lease (the dead run's lease of
       the same rollout is ours) -> put the pre-change file back from history ->
       reload/restart -> verify loaded -> stamp rolled-back -> release
    -> close the journal's record

The live boxes decide; the journal only helps (plan, pre-change shas, and the
phase the machine had reached). Every step is idempotent, so killing a resume
and running it again is safe, and a resume killed while rolling back keeps
rolling back: the journal's `Interrupted` event (or the stamps' rolled-back
entries) says so. A lease left by the resumed rollout is broken only when its
holder is dead (gone from this machine, its heartbeat stale, or expired) or the
operator says so (`break_leases`); any other lease makes that box fail, named.

Modes (recovery.Mode): a rollout that a failed gate or watchdog had judged (a
verdict) is rolled back whole and its revision stays blocked. Any other cut-short
rollout (a crash, a signal, a lost lock, our own bug) is settled by fleet.yaml's
`rollout.on_resume` (or `--policy`): `settle` (default) puts the cut-short wave
back and keeps the waves whose gates had passed; `finish` keeps every box already
consistent on the target; `rollback` restores every box. None of these blocks the
revision, so a plain apply then carries on to the head in waves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from reconciler.engine import boxops
from reconciler.engine.boxops import BoxHandle, BoxOpError, Lease
from reconciler.engine.session import Link, Source, take_fence
from reconciler.engine.steps import (
    Crew,
    RestoreJob,
    clear_former,
    drop_new_path,
    restore_box,
    restore_moved_box,
)
from reconciler.journal.base import Journal
from reconciler.journal.liveness import heartbeat_stale, holder_gone, on_this_machine
from reconciler.model.agent import Agent
from reconciler.model.box import LEASE_FILE, ContractError, Stamp
from reconciler.model.live import BoxState
from reconciler.rollout.clock import Clock
from reconciler.rollout.commands import RestoreBox
from reconciler.rollout.events import Interrupted
from reconciler.rollout.figures import seconds
from reconciler.rollout.machine import EVENT_TRANSITIONS
from reconciler.rollout.phases import Outcome
from reconciler.rollout.preflight import desired_of
from reconciler.rollout.recovery import (
    Action,
    BoxGoal,
    BoxSeen,
    LeaseSeen,
    Mode,
    Unfinished,
    decide,
    from_journal,
    from_stamps,
    left_over,
    mode_of,
    moved_goal,
)
from reconciler.rollout.reporter import Reporter
from reconciler.transport.base import TransportError
from reconciler.transport.link import past_paths
from reconciler.transport.live import Box as LiveReadable
from reconciler.transport.live import read_box as read_live

RESUME_BOUNDARIES: Final = (
    "resume.begin",
    "resume.lease",
    "resume.write",
    "resume.activate",
    "resume.verify",
    "resume.stamp",
    "resume.release",
    "resume.finish",
)

TORN: Final = "(a lease dir without its file)"


@dataclass(frozen=True, slots=True)
class ResumeOptions:
    """How the resume runs: policy, who we are, limits."""

    fleet_id: str
    holder: str
    policy: Mode = Mode.SETTLE  # fleet.yaml rollout.on_resume, or --policy
    break_leases: bool = False  # the operator says the lease holders are dead
    parallel: int = 32
    history_keep: int = 5
    verify_timeout_s: float = 60.0
    lease_ttl_s: float = 900.0
    box_timeout_s: float = 180.0
    fleet_key: bytes | None = field(default=None, repr=False)  # names the kept secrets copy


@dataclass
class ResumeResult:
    """How the resume ended, box by box."""

    rollout_id: str
    source: str
    outcome: Outcome
    rolled_back: bool
    actions: dict[str, Action]
    restored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    duration_s: float | None = None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    target_revision: str | None = None

    def stops_apply(self, head: str) -> bool:
        """Apply must not go on to `head`: a box could not be put back, or the rollout was
        rolled back (a verdict, or policy) and the head is still its revision."""
        return bool(self.failed) or (self.rolled_back and head == self.target_revision)


def lease_is_dead(lease: LeaseSeen, now: datetime) -> bool:
    """The lease expired, its holder's process is gone from this machine (or its pid was
    reused), or its holder runs elsewhere and its heartbeat is three periods old: the rule
    of the fleet lock and of a lease take (`boxops.Lease.dead`)."""
    if lease.expires_at <= now or lease.gone:
        return True
    return not lease.local and heartbeat_stale(lease.heartbeat_at, now)


def _seen(lease: Lease) -> LeaseSeen:
    return LeaseSeen(
        lease.holder, lease.rollout_id, lease.expires_at, heartbeat_at=lease.heartbeat_at,
        gone=holder_gone(lease), local=on_this_machine(lease),
    )  # fmt: skip


async def read_box(h: BoxHandle, fleet_id: str) -> BoxSeen:
    """Stamp, file sha, loaded sha and lease of one box (errors become `error`).

    The box is read by the one live reader (`transport.live.read_box`, as diff and
    apply read it), then its lease directory.
    """

    async def connect(_agent: Agent) -> LiveReadable:
        return h.box

    live = await read_live(h.agent, connect, h.fetch_health, fleet_id=fleet_id, fleet_key=None,
                           timeout=h.command_timeout)  # fmt: skip
    if live.state is BoxState.UNKNOWN:
        return BoxSeen.of(live)
    try:
        raw = await h.box.read_file(h.paths.lease_dir / LEASE_FILE)
        lease = Lease.parse(raw) if raw is not None else None
        if lease is None and (st := await h.box.stat(h.paths.lease_dir)) is not None:
            # a lease dir without its file: a take cut short (or a torn write)
            fresh_until = datetime.fromtimestamp(st.mtime + boxops.TORN_FRESH_S, UTC)
            lease = Lease(TORN, "", fresh_until)
    except TransportError as exc:
        return BoxSeen(h.name, error=str(exc))
    seen_lease = _seen(lease) if lease else None
    return BoxSeen.of(live, seen_lease)


async def read_boxes(
    handles: Mapping[str, BoxHandle], parallel: int, *, fleet_id: str = ""
) -> dict[str, BoxSeen]:
    """Every box read, at most `parallel` at once. `fleet_id` only tells foreign stamps
    apart (resume trusts a box by its rollout id and shas, not by its fleet)."""
    gate = asyncio.Semaphore(parallel)

    async def one(h: BoxHandle) -> BoxSeen:
        async with gate:
            return await read_box(h, fleet_id)

    seen = await asyncio.gather(*(one(h) for h in handles.values()))
    return {b.agent: b for b in seen}


class Resumer:
    """Carries out the resume of one unfinished rollout."""

    def __init__(
        self,
        u: Unfinished,
        handles: Mapping[str, BoxHandle],
        opts: ResumeOptions,
        *,
        clock: Clock,
        reporter: Reporter,
        journal: Journal | None = None,
        former: Mapping[str, BoxHandle] | None = None,
        old: Mapping[str, BoxSeen] | None = None,
    ) -> None:
        self.u = u
        self.handles = handles
        self.former = dict(former or {})  # a move's box at its old config path
        self.old = dict(old or {})  # ... as read there
        self.opts = opts
        self.clock = clock
        self.reporter = reporter
        self.journal = journal if u.source == "journal" else None
        self.on_boundary: Callable[[str, str | None], None] = lambda _n, _a: None
        self.mode = mode_of(u, opts.policy)
        self.fence = 0  # set from the boxes in run(): the cut-short rollout's own number
        self.back = self.mode is Mode.ROLLBACK
        self._lease_errors: dict[str, str] = {}

    def _note(self, kind: str, **fields: object) -> None:
        self.reporter.note(kind, fields)  # type: ignore[arg-type]

    async def run(self, seen: Mapping[str, BoxSeen]) -> ResumeResult:
        """Decide every box, restore the ones that need it, close the journal record."""
        started = self.clock.now()
        u = self.u
        self.on_boundary("resume.begin", None)
        actions = decide(u, seen, mode=self.mode, old=self.old)
        stamps = [b.stamp for b in (*seen.values(), *self.old.values())]
        self.fence = resume_fence(u.rollout_id, stamps, self.journal, self.opts.fleet_id)
        self._note(
            "resume.started", rollout_id=u.rollout_id, source=u.source,
            mode=str(self.mode), verdict=u.verdict, evidence=list(u.evidence),
            boxes={a: str(x) for a, x in sorted(actions.items())},
        )  # fmt: skip
        self._check_leases(seen, actions, started)
        j = self.journal
        if j is not None and self.back and (u.phase, Interrupted) in EVENT_TRANSITIONS:
            j.record_event(u.rollout_id, Interrupted("resumed after a crash: rolling back"))
        result = ResumeResult(u.rollout_id, u.source, Outcome.ABORTED, self.back, actions,
                              evidence=u.evidence, target_revision=u.target_revision)  # fmt: skip
        gate = asyncio.Semaphore(self.opts.parallel)

        async def one(agent: str) -> None:
            async with gate:
                error = await self._restore(u.goals[agent])
            if error is None:
                result.restored.append(agent)
                self._note("box.restored", agent=agent)
            else:
                result.failed[agent] = error
                self._note("box.restore_failed", agent=agent, reason=error)

        await self._break_torn(seen, started)
        todo = sorted(a for a, x in actions.items() if x is Action.RESTORE)
        await asyncio.gather(*(one(a) for a in todo))
        await self._settle_moves(actions, result)
        await self._drop_kept_secrets(seen)
        kept = {a: seen[a] for a, x in actions.items() if x in (Action.KEEP_OLD, Action.KEEP_NEW)}
        await release_dead_leases(self.handles, kept, u.rollout_id)
        for agent, action in actions.items():
            if action in (Action.UNREACHABLE, Action.NO_RESTORE) and agent not in result.failed:
                result.failed[agent] = (
                    seen[agent].error or self._old_error(agent) or "unreachable"
                    if action is Action.UNREACHABLE
                    else "it had no config file before this rollout: decide by hand"
                )
                if agent in self.former:
                    result.failed[agent] += (
                        f" (a move {self.former[agent].paths.config} → "
                        f"{self.handles[agent].paths.config} cut short: both paths left as "
                        "they are; restore by hand)"
                    )
        result.outcome = self._outcome(result, seen)
        self.on_boundary("resume.finish", None)
        result.duration_s = seconds(started, self.clock.now())
        self._close(result)
        self._note("resume.finished", rollout_id=u.rollout_id, outcome=str(result.outcome),
                   restored=len(result.restored), failed=sorted(result.failed))  # fmt: skip
        return result

    def _old_error(self, agent: str) -> str | None:
        b = self.old.get(agent)
        return None if b is None or b.error is None else f"at its old path: {b.error}"

    def _crew(self) -> Crew:
        o = self.opts
        return Crew(
            holder=o.holder, rollout_id=self.u.rollout_id, fleet_id=o.fleet_id,
            clock=self.clock, lease_ttl_s=o.lease_ttl_s, verify_timeout_s=o.verify_timeout_s,
            history_keep=o.history_keep, fence=self.fence, fleet_key=o.fleet_key,
        )  # fmt: skip

    async def _settle_moves(self, actions: Mapping[str, Action], result: ResumeResult) -> None:
        """Each moved box kept on one path: kept at the new path, the old path's files go
        (`clear_former`); kept at the old path, the new path's files of this rollout go
        (`drop_new_path`) and the old path's lease is released. (A restored one was done
        by `restore_moved_box`.)"""

        async def one(agent: str, action: Action) -> None:
            h, former = self.handles[agent], self.former[agent]
            crew = self._crew()
            try:
                async with asyncio.timeout(self.opts.box_timeout_s):
                    if action is Action.KEEP_NEW:
                        gone = await clear_former(former, crew)
                        where = former.paths.config
                    else:
                        target = self.u.goals[agent].target_sha
                        gone = await drop_new_path(h, crew, target_sha=target)
                        await boxops.release_lease(former, rollout_id=self.u.rollout_id)
                        where = h.paths.config
            except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
                why = str(exc) if not isinstance(exc, TimeoutError) else "timed out"
                result.failed[agent] = f"a move cut short, not settled: {why}; restore by hand"
                self._note("box.restore_failed", agent=agent, reason=result.failed[agent])
                return
            self._note(
                "box.moved", agent=agent, old=str(former.paths.config), new=str(h.paths.config),
                kept="new path" if action is Action.KEEP_NEW else "old path",
                removed=", ".join(gone) or f"nothing at {where}",
            )  # fmt: skip

        todo = [(a, x) for a, x in actions.items()
                if a in self.former and x in (Action.KEEP_NEW, Action.KEEP_OLD)]  # fmt: skip
        await asyncio.gather(*(one(a, x) for a, x in todo))

    async def _drop_kept_secrets(self, seen: Mapping[str, BoxSeen]) -> None:
        """The cut-short rollout is over now: its copies of previous secrets leave the boxes."""
        reachable = [a for a, b in seen.items() if b.error is None and a in self.handles]
        await asyncio.gather(
            *(
                boxops.drop_kept_secrets(self.handles[a], self.u.rollout_id, self.opts.fleet_key)
                for a in reachable
            ),
            return_exceptions=True,
        )

    async def _break_torn(self, seen: Mapping[str, BoxSeen], now: datetime) -> None:
        """Remove lease dirs without a lease file that the dead run was taking.

        Ours when the journal has the box's step still open, or the dir is older than
        a take lasts (or the operator said --break-leases); else left for its owner.
        """
        mid: set[str | None] = set()
        if self.journal is not None:
            mid = {s.agent for s in self.journal.open_intents(self.u.rollout_id)}
        young: dict[str, datetime] = {}
        for agent, b in seen.items():
            lease = b.lease
            if lease is None or lease.holder != TORN or agent not in self.handles:
                continue
            if agent in mid or lease.expires_at <= now or self.opts.break_leases:
                h = self.handles[agent]
                with contextlib.suppress(TransportError):
                    await h.box.rmtree(h.paths.lease_dir)
            else:
                young[agent] = lease.expires_at
        if young:
            # A release cut short leaves such a dir too (its file gone, not yet the dir).
            # A take in progress gets its file within TORN_FRESH_S: wait that out, then
            # break what is still torn (as a lease take would).
            wait = (max(young.values()) - now).total_seconds()
            await self.clock.sleep(min(max(wait, 0.0), boxops.TORN_FRESH_S) + 0.5)
            for agent in young:
                with contextlib.suppress(TransportError):
                    await boxops.break_torn(self.handles[agent], self.clock.now())

    def _check_leases(
        self, seen: Mapping[str, BoxSeen], actions: dict[str, Action], now: datetime
    ) -> None:
        """A live holder's lease of the resumed rollout: that box is not touched."""
        for agent, b in [*seen.items(), *self.old.items()]:
            lease = b.lease
            if lease is None or lease.rollout_id != self.u.rollout_id:
                continue
            if self.opts.break_leases or lease_is_dead(lease, now):
                continue
            actions[agent] = Action.UNREACHABLE
            self._lease_errors[agent] = (
                f"lease held by {lease.holder} (alive, or on another machine) until "
                f"{lease.expires_at.isoformat()}; if it is dead, run again with --break-leases"
            )

    def _outcome(self, r: ResumeResult, seen: Mapping[str, BoxSeen]) -> Outcome:
        for agent, why in self._lease_errors.items():
            r.failed[agent] = why
        if r.failed:
            return Outcome.ROLLBACK_FAILED
        if not self.back:
            return Outcome.DONE if self.u.finished_waves else Outcome.SETTLED
        touched = (
            bool(r.restored)
            or self.u.rolling_back
            or any(
                b.stamp is not None and b.stamp.rollout_id == self.u.rollout_id
                for a, b in seen.items()
                if a in self.u.goals
            )
        )
        return Outcome.ROLLED_BACK if touched else Outcome.ABORTED

    def _close(self, r: ResumeResult) -> None:
        if self.journal is None:
            return
        summary: dict[str, Any] = {
            "revision": self.u.target_revision,
            "resumed": True,
            "resume_mode": str(self.mode),
            "verdict": self.u.verdict,
            "restored": sorted(r.restored),
            "kept": sorted(a for a, x in r.actions.items() if x is Action.KEEP_NEW),
            "restore_failed": sorted(r.failed),
            "left_behind": [],
            "trigger": "the rollout was cut short (the reconciler died or was stopped); "
            + (
                "rolled back after a failed gate or watchdog"
                if self.u.verdict
                else f"settled ({self.mode})"
            ),
            "time_to_roll_back_s": r.duration_s if self.back else None,
            "duration_s": r.duration_s,
        }
        self.journal.finish(self.u.rollout_id, r.outcome, summary)

    async def _restore(self, goal: BoxGoal) -> str | None:
        """Put one box back on its pre-change sha; None, or why it failed."""
        h = self.handles[goal.agent]
        intent = None
        if self.journal is not None:
            cmd = RestoreBox(goal.agent, goal.pre_sha, goal.activation)
            intent = self.journal.record_intent(
                self.u.rollout_id, goal.agent, cmd, {"boundary": "resume.restore"}
            )
        try:
            async with asyncio.timeout(self.opts.box_timeout_s):
                await self._restore_steps(h, goal)
        except (BoxOpError, TransportError, ContractError, TimeoutError) as exc:
            why = str(exc) if not isinstance(exc, TimeoutError) else "timed out"
            if self.journal is not None and intent is not None:
                self.journal.record_result(
                    self.u.rollout_id, intent, ok=False, data={"reason": why}
                )
            return why
        if self.journal is not None and intent is not None:
            self.journal.record_result(self.u.rollout_id, intent, ok=True)
        return None

    async def _restore_steps(self, h: BoxHandle, goal: BoxGoal) -> None:
        crew = self._crew()
        job = RestoreJob(
            pre_sha=goal.pre_sha, pre_revision=goal.pre_revision, activation=goal.activation,
            verdict_on=self.u.target_revision if self.u.verdict else None,
            look_for_kept_secrets=True,
        )  # fmt: skip

        async def boundary(name: str, work: Awaitable[Any]) -> Any:
            self.on_boundary(f"resume.{name}", h.name)
            return await work

        former = self.former.get(goal.agent)
        if former is not None:  # a move: its new path's files go, the old path is restored
            await restore_moved_box(h, former, job, crew, target_sha=goal.target_sha,
                                    boundary=boundary)  # fmt: skip
            return
        await restore_box(h, job, crew, boundary=boundary)


def resume_fence(
    rollout_id: str,
    stamps: Sequence[Stamp | None],
    journal: Journal | None = None,
    fleet_id: str = "",
) -> int:
    """The number the resume writes with: the cut-short rollout's own (from the stamps it
    wrote), or, when it stamped no box, a new one above every number seen (and, with a
    journal, above every number its backend handed out)."""
    own = [s.fence for s in stamps if s is not None and s.rollout_id == rollout_id]
    return max(own) if own else take_fence(journal, fleet_id, list(stamps))


async def release_dead_leases(
    handles: Mapping[str, BoxHandle], seen: Mapping[str, BoxSeen], rollout_id: str
) -> None:
    """Remove leases of `rollout_id` left on boxes that needed nothing else."""
    await asyncio.gather(
        *(
            boxops.release_lease(handles[a], rollout_id=rollout_id)
            for a, b in seen.items()
            if b.error is None and b.lease is not None and b.lease.rollout_id == rollout_id
        ),
        return_exceptions=True,
    )


@dataclass(frozen=True, slots=True)
class Found:
    """A cut-short rollout as found: what it was, its boxes' handles, the boxes as read."""

    unfinished: Unfinished
    handles: Mapping[str, BoxHandle]
    seen: Mapping[str, BoxSeen]
    former: Mapping[str, BoxHandle] = field(default_factory=dict)  # moves: the old path
    old: Mapping[str, BoxSeen] = field(default_factory=dict)  # ... as read there

    def preview(self, policy: Mode) -> tuple[Mode, dict[str, Action]]:
        """The mode a resume would run in and each box's action (nothing is done)."""
        mode = mode_of(self.unfinished, policy)
        return mode, decide(self.unfinished, self.seen, mode=mode, old=self.old)


async def find_unfinished(
    source: Source,
    link: Link,
    journal: Journal | None,
    *,
    parallel: int,
    explicit: bool,
) -> Found | None:
    """The fleet's cut-short rollout, read from the journal and the boxes; None: none.

    The journal's unfinished rollout comes first. Without one, the boxes are read:
    always for an explicit `reconcile resume`, and for `apply` only when the journal
    knows nothing of this fleet (a fresh CI runner), looking for hard evidence.
    """
    fleet = source.repo.fleet
    agents = {name: ea.agent for name, ea in source.repo.agents.items()}
    u: Unfinished | None = None
    if journal is not None:
        for rec in journal.unfinished(fleet.fleet_id):
            u = from_journal(rec.rollout_id, rec.plan, rec.pre_shas, journal.replay(rec.rollout_id))
            break
    if u is not None:
        handles = {a: link.box(agents[a]) for a in u.goals if a in agents}
        seen = await read_boxes(handles, parallel, fleet_id=fleet.fleet_id)
        return await _with_moves(Found(u, handles, seen), link, agents)
    known = journal.history(fleet.fleet_id, limit=200) if journal is not None else []
    if known and not explicit:
        return None
    handles = {a: link.box(agent) for a, agent in agents.items()}
    seen = await read_boxes(handles, parallel, fleet_id=fleet.fleet_id)
    head = {a: d.sha for a, d in desired_of(source.repo).items()}
    fresh = explicit and not known
    # For apply's look before it starts, a lease whose holder is alive (a run on this
    # machine, or one elsewhere not yet expired) is a rollout at work, not one cut short:
    # no evidence. An explicit `reconcile resume` keeps it, and says whose it is.
    now = datetime.now(UTC)
    evidence = {
        a: replace(b, lease=None)
        if not explicit and b.lease is not None and not lease_is_dead(b.lease, now)
        else b
        for a, b in seen.items()
    }
    u = from_stamps(
        evidence, fleet_id=fleet.fleet_id,
        head_revision=source.revision if fresh else None, head_shas=head if fresh else None,
        finished=frozenset(r.rollout_id for r in known if r.finished),
    )  # fmt: skip
    if u is None:
        return None
    return await _with_moves(Found(u, handles, seen), link, agents)


def _revisions(seen: Mapping[str, BoxSeen], u: Unfinished) -> set[str]:
    """Every revision the boxes' stamps (and their histories) and the goals name."""
    out = {g.pre_revision for g in u.goals.values() if g.pre_revision}
    for b in seen.values():
        if b.stamp is not None:
            out |= {b.stamp.revision, *(e.revision for e in b.stamp.history)}
    return out


async def _with_moves(found: Found, link: Link, agents: Mapping[str, Agent]) -> Found:
    """`found` with the moves its rollout made (a config_path change): each such box read
    at its old path too. With the journal, its plan names the old path; without it, an old
    path (from the revisions the stamps name) is the move's when it holds a lease of the
    rollout, or this agent's stamp while the new path has none or one of the rollout
    carrying the old one's history on."""
    u, seen = found.unfinished, found.seen
    fleet_id = u.fleet_id
    goals = {a: agents[a] for a in u.goals if a in agents and a in found.handles}
    if u.source == "journal":
        goals = {a: x for a, x in goals.items() if u.goals[a].moved_from}
    if not goals:
        return found
    cands = past_paths(link.root, (), goals, _revisions(seen, u))
    for a, agent in goals.items():
        want = u.goals[a].moved_from
        if want is None:
            continue
        cands[a] = [c for c in cands.get(a, []) if c.config_path == want] or [
            agent.model_copy(update={"config_path": want, "secrets_path": None})
        ]
    former: dict[str, BoxHandle] = {}
    old: dict[str, BoxSeen] = {}
    for a, options in cands.items():
        for c in options:
            h = link.box(c)
            b = await read_box(h, fleet_id)
            if _is_move(u, a, seen.get(a), b):
                former[a], old[a] = h, b
                break
    goals_now = dict(u.goals)
    for a, b in old.items():
        goals_now[a] = moved_goal(goals_now[a], b)
    u = replace(u, goals=goals_now)
    return Found(u, found.handles, seen, former, old)


def _is_move(u: Unfinished, agent: str, new: BoxSeen | None, old: BoxSeen) -> bool:
    if u.goals[agent].moved_from is not None:  # the journaled plan says so
        return True
    if old.error is not None or new is None:
        return False
    if old.lease is not None and old.lease.rollout_id == u.rollout_id:
        return True
    s = old.stamp
    if s is None or (s.agent, s.fleet_id) != (agent, u.fleet_id):
        return False
    if new.stamp is None:
        return True
    return new.stamp.rollout_id == u.rollout_id and left_over(
        new.stamp, s, agent=agent, fleet_id=u.fleet_id
    )


async def clear_left_moves(
    source: Source,
    link: Link,
    opts: ResumeOptions,
    *,
    clock: Clock,
    reporter: Reporter,
    on_boundary: Callable[[str, str | None], None] | None = None,
) -> dict[str, list[str]]:
    """Finish the moves whose old path was not cleared (a run killed after its rollout was
    done, while clearing; or a move kept by a resume without the journal): an agent's box
    stamped at its config path, whose old path (from the revisions the stamps name) still
    holds this agent's stamp that the new one carries on (`recovery.left_over`), or only a
    dead lease of the rollout that wrote the new stamp. Only reconciler's files go; each is
    said (`box.moved`). The paths removed, per agent."""
    fleet_id = source.repo.fleet.fleet_id
    agents = {n: ea.agent for n, ea in source.repo.agents.items()}
    handles = {a: link.box(x) for a, x in agents.items()}
    seen = await read_boxes(handles, opts.parallel, fleet_id=fleet_id)
    revisions: set[str] = set()
    for b in seen.values():
        if b.stamp is not None:
            revisions |= {b.stamp.revision, *(e.revision for e in b.stamp.history)}
    stamped = {a: x for a, x in agents.items() if seen[a].stamp is not None}
    now = clock.now()
    out: dict[str, list[str]] = {}

    async def one(agent: str, cands: list[Agent]) -> None:
        new = seen[agent].stamp
        if new is None:
            return
        for c in cands:
            former = link.box(c)
            old = await read_box(former, fleet_id)
            lease = old.lease
            if old.error is not None or (lease is not None and not lease_is_dead(lease, now)):
                continue
            ours_lease = lease is not None and lease.rollout_id == new.rollout_id
            if not (left_over(new, old.stamp, agent=agent, fleet_id=fleet_id) or (
                    old.stamp is None and ours_lease)):  # fmt: skip
                continue
            crew = Crew(
                holder=opts.holder, rollout_id=new.rollout_id, fleet_id=fleet_id, clock=clock,
                lease_ttl_s=opts.lease_ttl_s, fence=new.fence, fleet_key=opts.fleet_key,
            )  # fmt: skip

            async def boundary(name: str, work: Awaitable[Any]) -> Any:
                if on_boundary is not None:
                    on_boundary(f"resume.move.{name}", agent)
                return await work

            try:
                if old.stamp is None:
                    await boxops.release_lease(former, rollout_id=new.rollout_id)
                    gone: list[str] = []
                else:
                    gone = await clear_former(former, crew, boundary=boundary)
            except (BoxOpError, TransportError, ContractError) as exc:
                reporter.note(
                    "warning",
                    {
                        "message": f"{agent}: its old config path "
                        f"{former.paths.config} was not cleared: {exc}; remove it by hand"
                    },
                )
                continue  # fmt: skip
            out[agent] = gone
            reporter.note("box.moved", {
                "agent": agent, "old": str(former.paths.config),
                "new": str(handles[agent].paths.config),
                "removed_from_old_path": ", ".join(gone) or "its lease",
                "why": "a move whose old path was not cleared (the run was cut short)",
            })  # fmt: skip

    cands = past_paths(link.root, (), stamped, revisions)
    await asyncio.gather(*(one(a, c) for a, c in cands.items()))
    return out


async def resume_fleet(
    source: Source,
    link: Link,
    journal: Journal | None,
    opts: ResumeOptions,
    *,
    clock: Clock,
    reporter: Reporter,
    explicit: bool,
    on_boundary: Callable[[str, str | None], None] | None = None,
) -> ResumeResult | None:
    """Find the fleet's cut-short rollout (`find_unfinished`) and settle or roll it back."""
    found = await find_unfinished(source, link, journal, parallel=opts.parallel, explicit=explicit)
    if found is None:
        if explicit:
            await clear_left_moves(source, link, opts, clock=clock, reporter=reporter,
                                   on_boundary=on_boundary)  # fmt: skip
        return None
    resumer = Resumer(
        found.unfinished, found.handles, opts, clock=clock, reporter=reporter, journal=journal,
        former=found.former, old=found.old,
    )  # fmt: skip
    if on_boundary is not None:
        resumer.on_boundary = on_boundary
    return await resumer.run(found.seen)
