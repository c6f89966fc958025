"""Crash recovery, decided (pure): which rollout was cut short, and what each of its boxes needs.

A killed reconciler leaves its rollout unfinished: in the journal (a rollout
with no outcome) and on the boxes (a lease directory naming the rollout, a
config file the stamp does not describe yet, stamps of the rollout both
`applied` and `rolled-back`). The live boxes decide; the journal only helps:

- `from_journal` takes the journaled plan and pre-change shas, and folds the
  journaled events to learn whether the run was already rolling back (it keeps
  rolling back) or had finished its last wave.
- `from_stamps` works with the journal lost: the newest rollout id with
  evidence on the boxes, each box's pre-change sha from its stamp history
  (the first entry of another rollout), and its target from the stamp.

`decide` then gives each box one `Action`: keep it (consistent on the old or,
when settling or finishing, the new config: file sha == stamp sha == loaded
sha), restore it to its pre-change sha from its own history, or leave it to a
human (unreachable, or no pre-change file). Nothing here does I/O or reads a clock.

Modes (`Mode`): a verdict (a failed gate or watchdog) always rolls the whole
rollout back and keeps its revision blocked. Otherwise (a crash, a signal, a lost
lock, our own bug) fleet.yaml's `rollout.on_resume` says: `settle` (default) rolls
back the wave that was cut short and keeps the waves whose gates had passed, so the
next apply goes on to the head; `finish` also keeps the cut-short wave's boxes that
are consistent on the target; `rollback` restores every box of the rollout.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.model.box import Stamp
from reconciler.model.live import BoxState, LiveBox
from reconciler.plan.model import Activation, Plan
from reconciler.rollout.events import Event
from reconciler.rollout.machine import MachineError, fold
from reconciler.rollout.phases import Phase
from reconciler.rollout.state import Rollout

ROLLBACK_PHASES = frozenset({Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED})


class Mode(enum.StrEnum):
    """How a cut-short rollout is settled (fleet.yaml `rollout.on_resume`, `--policy`)."""

    SETTLE = "settle"  # roll back the cut-short wave, keep the passed ones
    FINISH = "finish"  # keep every box consistent on the target
    ROLLBACK = "rollback"  # restore every box of the rollout


@dataclass(frozen=True, slots=True)
class LeaseSeen:
    """A lease directory found on a box: who left it, for which rollout, until when.

    `gone`: its holder ran on this machine and its process is gone (judged when read);
    `local`: its holder runs on this machine (then alive unless gone); `heartbeat_at`: its
    last renewal (None in older leases: judged by `expires_at` alone).
    """

    holder: str
    rollout_id: str
    expires_at: datetime
    heartbeat_at: datetime | None = None
    gone: bool = False
    local: bool = False


@dataclass(frozen=True, slots=True)
class BoxSeen:
    """One box as read at resume time; `error` set when it could not be read."""

    agent: str
    stamp: Stamp | None = None
    file_sha: str | None = None
    loaded_sha: str | None = None  # what the agent reports loaded (None: no answer)
    alive: bool = False  # the agent answered health and says it is alive
    lease: LeaseSeen | None = None
    error: str | None = None

    @classmethod
    def of(cls, live: LiveBox, lease: LeaseSeen | None = None) -> BoxSeen:
        """The resume's view of a box read by the one live reader (transport.live)."""
        health = live.health
        return cls(
            agent=live.agent,
            stamp=live.stamp,
            file_sha=live.config_sha256,
            loaded_sha=health.loaded_sha256 if health is not None else None,
            alive=health is not None and health.alive,
            lease=lease,
            error=live.reason if live.state is BoxState.UNKNOWN else None,
        )

    def consistent_on(self, sha: str | None) -> bool:
        """file sha == stamp sha == loaded sha == `sha`, and the agent is alive."""
        s = self.stamp
        return (
            self.alive
            and sha is not None
            and s is not None
            and self.file_sha == sha
            and s.config_sha256 == sha
            and self.loaded_sha == sha
        )


@dataclass(frozen=True, slots=True)
class BoxGoal:
    """What the cut-short rollout meant for one box: from which sha, to which."""

    agent: str
    pre_sha: str | None
    pre_revision: str | None
    target_sha: str | None
    activation: Activation = Activation.RELOAD
    moved_from: str | None = None  # the journaled plan moves its config from this path


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A rollout cut short: its id, target, boxes, and how far it got."""

    rollout_id: str
    fleet_id: str
    target_revision: str | None
    goals: Mapping[str, BoxGoal]
    source: str  # "journal" or "stamps"
    phase: Phase | None = None  # the journaled machine's phase (None: journal lost)
    rolling_back: bool = False  # it was rolling back when it died
    evidence: tuple[str, ...] = ()  # why it is taken as unfinished, for the operator
    verdict: bool = False  # a failed gate or watchdog had judged it: roll back, keep blocked
    passed: frozenset[str] | None = None  # agents of waves whose gates passed (None: unknown)

    @property
    def finished_waves(self) -> bool:
        """The journaled machine had reached DONE (only the journal's end was missing)."""
        return self.phase is Phase.DONE


class Action(enum.StrEnum):
    """What resume does to one box."""

    KEEP_OLD = "keep-old"  # consistent on its pre-change config
    KEEP_NEW = "keep-new"  # consistent on the target, stamped by the rollout (finish only)
    RESTORE = "restore"  # put back on its pre-change config from its history
    UNREACHABLE = "unreachable"  # could not be read: left alone, a human must look
    NO_RESTORE = "no-restore"  # it had no config before: nothing to restore to


def journal_state(
    plan: Plan, pre_shas: Mapping[str, str | None], events: Iterable[Event]
) -> Rollout:
    """The machine's state after the journaled events (PLANNED when they do not fold)."""
    start = Rollout.start(plan, pre_shas)
    try:
        return fold(start, events)
    except (MachineError, ValueError):
        return start


def journal_phase(plan: Plan, pre_shas: Mapping[str, str | None], events: Iterable[Event]) -> Phase:
    """The machine's phase after the journaled events (PLANNED when they do not fold)."""
    return journal_state(plan, pre_shas, events).phase


def from_journal(
    rollout_id: str,
    plan: Plan,
    pre_shas: Mapping[str, str | None],
    events: Iterable[Event],
) -> Unfinished:
    """The unfinished rollout as journaled: plan, pre-change shas, and how far it got."""
    state = journal_state(plan, pre_shas, events)
    phase = state.phase
    passed = frozenset(b.agent for b in plan.boxes) if phase is Phase.DONE else None
    goals = {
        b.agent: BoxGoal(b.agent, pre_shas.get(b.agent, b.pre_sha), b.stamp_revision,
                         b.target_sha, b.activation, b.moved_from if b.moved else None)
        for b in plan.boxes
    }  # fmt: skip
    return Unfinished(
        rollout_id=rollout_id,
        fleet_id=plan.fleet_id,
        target_revision=plan.target_revision,
        goals=goals,
        source="journal",
        phase=phase,
        rolling_back=phase in ROLLBACK_PHASES,
        evidence=(f"the journal has rollout {rollout_id} with no outcome (phase {phase})",),
        verdict=state.verdict,
        passed=passed if passed is not None else frozenset(state.passed_agents),
    )


def _pre_of(stamp: Stamp, rollout_id: str) -> tuple[str | None, str | None]:
    """The sha and revision a box ran before `rollout_id`, from its stamp history."""
    for entry in stamp.history:
        if entry.rollout_id != rollout_id:
            return entry.config_sha256, entry.revision
    return None, None


def _evidence(seen: Mapping[str, BoxSeen], partial_head: str | None) -> dict[str, list[str]]:
    """Rollout id -> why it looks cut short, from leases and stamps."""
    why: dict[str, list[str]] = {}
    applied: dict[str, list[str]] = {}
    rolled: dict[str, list[str]] = {}
    for b in sorted(seen.values(), key=lambda b: b.agent):
        if b.error is not None:
            continue
        if b.lease is not None and b.lease.rollout_id:
            why.setdefault(b.lease.rollout_id, []).append(f"{b.agent}: lease left on the box")
        s = b.stamp
        if s is None:
            continue
        # A file or loaded config that disagrees with the stamp is no evidence on its own: a
        # rollout writes only under its lease and stamps before it lets go, so what a crash
        # leaves shows as a lease. Without one it is drift (a hand edit) or a sick agent,
        # and taking it for a cut-short rollout would undo the stamp's finished rollout.
        (applied if s.outcome == "applied" else rolled).setdefault(s.rollout_id, []).append(b.agent)
        if s.outcome == "applied" and s.blocked_revision == s.revision:
            why.setdefault(s.rollout_id, []).append(
                f"{b.agent}: marked blocked by a failed gate or watchdog: a rollback was cut short"
            )
    for rid in applied.keys() & rolled.keys():
        why.setdefault(rid, []).append(
            f"boxes stamped applied ({len(applied[rid])}) and rolled back ({len(rolled[rid])}) "
            "by it: a rollback was cut short"
        )
    if partial_head is not None:
        for rid, agents in applied.items():
            stamps = [seen[a].stamp for a in agents]
            on_head = [s for s in stamps if s is not None and s.revision == partial_head]
            if on_head and rid not in why:
                why[rid] = [f"{len(on_head)} box(es) on the head, others not: a rollout cut short"]
    return why


def from_stamps(
    seen: Mapping[str, BoxSeen],
    *,
    fleet_id: str,
    head_revision: str | None = None,
    head_shas: Mapping[str, str] | None = None,
    finished: frozenset[str] = frozenset(),
) -> Unfinished | None:
    """The newest rollout with evidence of being cut short on the boxes, or None.

    Evidence: a lease left on a box, stamps of the rollout both applied and rolled
    back (a box drifted by hand is not evidence). With `head_revision` and
    `head_shas` (explicit `reconcile resume`), also a rollout of the head that
    reached some boxes while others do not run it.
    Rollouts in `finished` (the journal knows how they ended) are not candidates.
    """
    partial = None
    if head_revision is not None and head_shas is not None:
        behind = [
            a for a, b in seen.items()
            if b.error is None and a in head_shas and not b.consistent_on(head_shas[a])
        ]  # fmt: skip
        partial = head_revision if behind else None
    why = {r: w for r, w in _evidence(seen, partial).items() if r not in finished}
    if not why:
        return None
    rid = max(why)
    goals: dict[str, BoxGoal] = {}
    target_revision: str | None = None
    rolling_back = False
    verdict = False
    for b in seen.values():
        s = b.stamp
        ours_stamp = s is not None and s.rollout_id == rid
        ours_lease = b.lease is not None and b.lease.rollout_id == rid
        if not (ours_stamp or ours_lease):
            continue
        if s is not None and ours_stamp and s.outcome == "applied":
            pre, pre_rev = _pre_of(s, rid)
            goals[b.agent] = BoxGoal(b.agent, pre, pre_rev, s.config_sha256)
            target_revision = target_revision or s.revision
            if s.blocked_revision == s.revision:
                verdict = rolling_back = True
        elif s is not None and ours_stamp:
            rolling_back = True
            goals[b.agent] = BoxGoal(b.agent, s.config_sha256, s.revision, None)
            target_revision = target_revision or s.blocked_revision
        else:  # only our lease: the stamp is still the one from before
            pre = s.config_sha256 if s is not None else None
            target = (head_shas or {}).get(b.agent)
            goals[b.agent] = BoxGoal(b.agent, pre, s.revision if s else None, target)
    # A rolled-back stamp of the rollout names the target as blocked only after a verdict
    # (a signal's or a crash's restore carries the box's earlier blocked revision, if any).
    verdict = verdict or any(
        b.stamp is not None
        and b.stamp.rollout_id == rid
        and b.stamp.outcome == "rolled-back"
        and target_revision is not None
        and b.stamp.blocked_revision == target_revision
        for b in seen.values()
    )
    return Unfinished(
        rollout_id=rid,
        fleet_id=fleet_id,
        target_revision=target_revision,
        goals=goals,
        source="stamps",
        rolling_back=rolling_back,
        evidence=tuple(why[rid]),
        verdict=verdict,
    )


def mode_of(u: Unfinished, policy: Mode) -> Mode:
    """The mode a resume runs in: a verdict always rolls back; a finished run keeps all."""
    if u.verdict:
        return Mode.ROLLBACK
    if u.finished_waves:
        return Mode.FINISH
    return policy


def _keeps_new(u: Unfinished, agent: str, mode: Mode) -> bool:
    """Whether the box may stay on the target (when consistent on it)."""
    if mode is Mode.FINISH:
        return True
    if mode is Mode.SETTLE:
        # the journal knows which waves passed their gates; without it, every box the
        # rollout stamped and that is consistent on the target is kept
        return u.passed is None or agent in u.passed
    return False


def decide(
    u: Unfinished,
    seen: Mapping[str, BoxSeen],
    *,
    mode: Mode,
    old: Mapping[str, BoxSeen] | None = None,
) -> dict[str, Action]:
    """Each box's action in `mode` (see the module's docstring).

    `old`: the boxes of a move (a config_path change) as read at their old path; `seen`
    has them at the new one. A moved box is kept on the target at the new path (the old
    path's files then go), else it is judged at its old path, which the move left as it
    was: kept there (the new path's files of the rollout go) or restored there.
    """
    out: dict[str, Action] = {}
    for agent, goal in u.goals.items():
        b = seen.get(agent)
        if b is None or b.error is not None:
            out[agent] = Action.UNREACHABLE
            continue
        s = b.stamp
        if (
            _keeps_new(u, agent, mode)
            and b.consistent_on(goal.target_sha)
            and s is not None
            and s.rollout_id == u.rollout_id
            and s.outcome == "applied"
        ):
            out[agent] = Action.KEEP_NEW
            continue
        at = (old or {}).get(agent, b)
        if at.error is not None:
            out[agent] = Action.UNREACHABLE
        elif at.consistent_on(goal.pre_sha):
            out[agent] = Action.KEEP_OLD
        elif goal.pre_sha is None:
            out[agent] = Action.NO_RESTORE
        else:
            out[agent] = Action.RESTORE
    return out


def moved_goal(goal: BoxGoal, old: BoxSeen) -> BoxGoal:
    """A moved box's goal with its pre-change config read at the old path when the new
    path could not tell it (the journal lost, no stamp yet at the new path)."""
    s = old.stamp
    if goal.pre_sha is not None or s is None:
        return goal
    return BoxGoal(goal.agent, s.config_sha256, s.revision, goal.target_sha, goal.activation,
                   goal.moved_from)  # fmt: skip


def left_over(new: Stamp | None, old: Stamp | None, *, agent: str, fleet_id: str) -> bool:
    """The old path's stamp is a finished move's leftover: both stamps name this agent and
    fleet, and the new path's stamp carries on the old one's history (the move wrote it)."""
    if new is None or old is None:
        return False
    if (new.agent, new.fleet_id) != (agent, fleet_id) or (old.agent, old.fleet_id) != (
        agent,
        fleet_id,
    ):
        return False
    return new.fence > old.fence and any(
        e.rollout_id == old.rollout_id and e.config_sha256 == old.config_sha256 for e in new.history
    )


def keeps_going_back(u: Unfinished, policy: Mode) -> bool:
    """The resume rolls the whole rollout back (a verdict, or policy rollback)."""
    return mode_of(u, policy) is Mode.ROLLBACK
