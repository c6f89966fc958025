"""The rollout as a pure state machine: `step(state, event) -> (state, commands)`; no I/O.

Rule 1 (after h11's _state.py): everything that decides a transition lives in
this file, in two tables as far as it fits:

- EVENT_TRANSITIONS: (phase, event type) -> phase. A pair missing from it is
  refused with IllegalTransition, and the state is untouched (it is a value).
- STATE_TRANSITIONS: guards checked after every event until none fires, e.g.
  APPLYING with the budget exceeded -> ROLLING_BACK; APPLYING with the wave's
  boxes all settled -> WATCHING.

Rule 2: it does not know who drives it. It returns commands and never runs
them; box operations are throttled here (at most `parallel` in flight), so a
driver just starts what it is given and reports back. The state is a pure
value, so resuming is `fold(Rollout.start(plan), journal.replay(id))`.

An event of an accepted type that names a box or wave the machine is not
waiting on is refused with UnexpectedEvent. While rolling back, late results
of cancelled checks (watchdog, soak, gates) and a second interrupt are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import reduce
from typing import Final

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
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    Event,
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
from reconciler.rollout.phases import Outcome, Phase
from reconciler.rollout.state import BoxStatus as S
from reconciler.rollout.state import Rollout

P = Phase
LATE = (WatchdogPassed, WatchdogFailed, SoakOver, GatesPassed, GatesFailed, Interrupted)

EVENT_TRANSITIONS: Final[Mapping[tuple[Phase, type[Event]], Phase]] = {
    (P.PLANNED, Started): P.PREFLIGHT,
    (P.PLANNED, Interrupted): P.ABORTED,
    (P.PREFLIGHT, PreflightPassed): P.APPLYING,
    (P.PREFLIGHT, PreflightFailed): P.ABORTED,
    (P.PREFLIGHT, Interrupted): P.ABORTED,
    (P.APPLYING, BoxApplied): P.APPLYING,
    (P.APPLYING, BoxFailed): P.APPLYING,  # charged to the budget; restored if touched
    (P.APPLYING, BoxRestored): P.APPLYING,  # a failed box within the budget, put back
    (P.APPLYING, BoxRestoreFailed): P.ROLLING_BACK,
    (P.APPLYING, Interrupted): P.ROLLING_BACK,  # in-flight boxes finish, then are restored
    (P.WATCHING, WatchdogPassed): P.WATCHING,
    (P.WATCHING, WatchdogFailed): P.WATCHING,  # charged to the budget; restored
    (P.WATCHING, BoxRestored): P.WATCHING,
    (P.WATCHING, BoxRestoreFailed): P.ROLLING_BACK,
    (P.WATCHING, Interrupted): P.ROLLING_BACK,
    (P.SOAKING, SoakOver): P.GATING,
    (P.SOAKING, Interrupted): P.ROLLING_BACK,
    (P.GATING, GatesPassed): P.APPLYING,  # the next wave; none left -> DONE
    (P.GATING, GatesFailed): P.ROLLING_BACK,  # whatever the budget
    (P.GATING, Interrupted): P.ROLLING_BACK,
    (P.ROLLING_BACK, BoxApplied): P.ROLLING_BACK,  # was in flight: restored too
    (P.ROLLING_BACK, BoxFailed): P.ROLLING_BACK,
    (P.ROLLING_BACK, BoxRestored): P.ROLLING_BACK,
    (P.ROLLING_BACK, BoxRestoreFailed): P.ROLLING_BACK,  # the others go on
    **{(P.ROLLING_BACK, late): P.ROLLING_BACK for late in LATE},  # ignored
}

Guard = Callable[[Rollout], bool]


def _exceeded(r: Rollout) -> bool:
    return r.budget.exceeded


def _no_wave_left(r: Rollout) -> bool:
    return r.current_wave is None


def _wave_applied(r: Rollout) -> bool:
    wave = r.current_wave
    return wave is not None and r.cursor == len(wave.agents) and r.settled


def _wave_watched(r: Rollout) -> bool:
    return not r.watching and r.settled


def _nothing_changed(r: Rollout) -> bool:
    return r.settled and not r.changed


def _all_restored(r: Rollout) -> bool:
    return r.settled and S.RESTORE_FAILED not in r.boxes.values()


def _restore_failed(r: Rollout) -> bool:
    return r.settled and S.RESTORE_FAILED in r.boxes.values()


STATE_TRANSITIONS: Final[tuple[tuple[Phase, str, Guard, Phase], ...]] = (
    (P.APPLYING, "budget exceeded", _exceeded, P.ROLLING_BACK),
    (P.APPLYING, "no wave left", _no_wave_left, P.DONE),
    (P.APPLYING, "wave applied", _wave_applied, P.WATCHING),
    (P.WATCHING, "budget exceeded", _exceeded, P.ROLLING_BACK),
    (P.WATCHING, "wave watched", _wave_watched, P.SOAKING),
    # Stopped before any box held the new config (a lease lost to another run, a signal
    # before the first write): nothing was rolled back because nothing changed.
    (P.ROLLING_BACK, "nothing changed", _nothing_changed, P.ABORTED),
    (P.ROLLING_BACK, "all restored", _all_restored, P.ROLLED_BACK),
    (P.ROLLING_BACK, "a restore failed", _restore_failed, P.ROLLBACK_FAILED),
)


class MachineError(Exception):
    """The driver fed the machine something it cannot take; the state is unchanged."""


class IllegalTransition(MachineError):
    """An event of a type the current phase does not accept."""

    def __init__(self, phase: Phase, event: Event) -> None:
        accepts = sorted(t.__name__ for p, t in EVENT_TRANSITIONS if p is phase)
        super().__init__(
            f"{type(event).__name__} is not accepted in phase {phase}"
            f" (accepted: {', '.join(accepts) or 'nothing, the rollout is over'})"
        )
        self.phase, self.event = phase, event


class UnexpectedEvent(MachineError):
    """An event naming a box or wave the machine is not waiting on."""

    def __init__(self, r: Rollout, event: Event, why: str) -> None:
        super().__init__(f"{event!r} in phase {r.phase}: {why}")
        self.phase, self.event = r.phase, event


# Bookkeeping: what each event changes besides the phase. Pure; raise before any change.


def _expect(r: Rollout, ev: Event, agent: str, *want: S) -> None:
    if r.status(agent) not in want:
        raise UnexpectedEvent(r, ev, f"{agent} is {r.status(agent)}, not {'/'.join(want)}")


def _expect_wave(r: Rollout, ev: Event, wave: int) -> None:
    if wave != r.wave:
        raise UnexpectedEvent(r, ev, f"the current wave is {r.wave}")


def _queue_restore(r: Rollout, agent: str) -> Rollout:
    return replace(r, restore_queue=(*r.restore_queue, agent))


def _note_applied(r: Rollout, ev: BoxApplied) -> Rollout:
    _expect(r, ev, ev.agent, S.APPLYING)
    r = replace(
        r,
        boxes=r.with_status({ev.agent: S.APPLIED}),
        busy=r.busy - {ev.agent},
        changed=(*r.changed, ev.agent),
    )
    return _queue_restore(r, ev.agent) if r.phase is P.ROLLING_BACK else r


def _note_failed(r: Rollout, ev: BoxFailed) -> Rollout:
    _expect(r, ev, ev.agent, S.APPLYING)
    touched = ev.step.touched
    r = replace(
        r,
        boxes=r.with_status({ev.agent: S.FAILED if touched else S.FAILED_UNTOUCHED}),
        busy=r.busy - {ev.agent},
        budget=r.budget.charge(ev.agent, f"apply failed at {ev.step}: {ev.reason}"),
        changed=(*r.changed, ev.agent) if touched else r.changed,
    )
    return _queue_restore(r, ev.agent) if touched else r


def _note_watch_passed(r: Rollout, ev: WatchdogPassed) -> Rollout:
    if r.phase is P.ROLLING_BACK:
        return r
    if ev.agent not in r.watching:
        raise UnexpectedEvent(r, ev, f"{ev.agent} is not being watched")
    return replace(r, boxes=r.with_status({ev.agent: S.HEALTHY}), watching=r.watching - {ev.agent})


def _note_watch_failed(r: Rollout, ev: WatchdogFailed) -> Rollout:
    if r.phase is P.ROLLING_BACK:
        return r
    if ev.agent not in r.watching:
        raise UnexpectedEvent(r, ev, f"{ev.agent} is not being watched")
    budget = r.budget.charge(ev.agent, f"watchdog {ev.verdict}: {ev.reason}")
    r = replace(
        r,
        boxes=r.with_status({ev.agent: S.FAILED}),
        watching=r.watching - {ev.agent},
        budget=budget,
        verdict=r.verdict or budget.exceeded,
    )
    return _queue_restore(r, ev.agent)


def _note_soak_over(r: Rollout, ev: SoakOver) -> Rollout:
    if r.phase is not P.ROLLING_BACK:
        _expect_wave(r, ev, ev.wave)
    return r


def _note_gates_passed(r: Rollout, ev: GatesPassed) -> Rollout:
    if r.phase is P.ROLLING_BACK:
        return r
    _expect_wave(r, ev, ev.wave)
    return replace(r, wave=r.wave + 1, cursor=0)


def _note_gates_failed(r: Rollout, ev: GatesFailed) -> Rollout:
    if r.phase is P.ROLLING_BACK:
        return r
    _expect_wave(r, ev, ev.wave)
    why = "; ".join(f"{f.gate}: {f.detail}" for f in ev.failed)
    return replace(r, trigger=f"gates failed in wave {ev.wave + 1}: {why}", verdict=True)


def _note_restored(r: Rollout, ev: BoxRestored) -> Rollout:
    _expect(r, ev, ev.agent, S.RESTORING)
    return replace(r, boxes=r.with_status({ev.agent: S.RESTORED}), busy=r.busy - {ev.agent})


def _note_restore_failed(r: Rollout, ev: BoxRestoreFailed) -> Rollout:
    _expect(r, ev, ev.agent, S.RESTORING)
    return replace(
        r,
        boxes=r.with_status({ev.agent: S.RESTORE_FAILED}),
        busy=r.busy - {ev.agent},
        trigger=r.trigger or f"restore of {ev.agent} failed: {ev.reason}",
    )


def _note_interrupted(r: Rollout, ev: Interrupted) -> Rollout:
    return r if r.phase is P.ROLLING_BACK else replace(r, trigger=r.trigger or ev.reason)


def _note(r: Rollout, ev: Event) -> Rollout:
    """The state with the event's bookkeeping done (the phase is the tables' business)."""
    match ev:
        case Started():
            return replace(r, parallel=ev.parallel)
        case PreflightPassed():
            return r
        case PreflightFailed():
            return replace(r, trigger=f"preflight failed: {ev.reason}")
        case BoxApplied():
            return _note_applied(r, ev)
        case BoxFailed():
            return _note_failed(r, ev)
        case WatchdogPassed():
            return _note_watch_passed(r, ev)
        case WatchdogFailed():
            return _note_watch_failed(r, ev)
        case SoakOver():
            return _note_soak_over(r, ev)
        case GatesPassed():
            return _note_gates_passed(r, ev)
        case GatesFailed():
            return _note_gates_failed(r, ev)
        case BoxRestored():
            return _note_restored(r, ev)
        case BoxRestoreFailed():
            return _note_restore_failed(r, ev)
        case Interrupted():
            return _note_interrupted(r, ev)
    raise TypeError(f"not an event: {ev!r}")


# What entering a phase asks for.


def _checks_running(r: Rollout, ev: Event) -> bool:
    """A watch, soak or gate run is still out after `ev` (a rollback must cancel it)."""
    if r.phase is P.WATCHING:
        return bool(r.watching)
    if r.phase is P.SOAKING:
        return not isinstance(ev, SoakOver)
    return r.phase is P.GATING and not isinstance(ev, GatesPassed | GatesFailed)


def _enter(r: Rollout, cancel: bool) -> tuple[Rollout, list[Command]]:
    """The state and commands on entering `r.phase`; `cancel`: checks are still out."""
    wave = r.current_wave
    if r.phase is P.PREFLIGHT:
        return r, [Preflight()]
    if r.phase is P.WATCHING and wave is not None:
        agents = tuple(a for a in wave.agents if r.status(a) is S.APPLIED)
        return replace(r, watching=frozenset(agents)), [Watch(r.wave, agents)] if agents else []
    if r.phase is P.SOAKING and wave is not None:
        return r, [Soak(r.wave, wave.soak_s)]
    if r.phase is P.GATING and wave is not None:
        healthy = tuple(a for a in wave.agents if r.status(a) is S.HEALTHY)
        return r, [RunGates(r.wave, healthy, wave.gates)]
    if r.phase is P.ROLLING_BACK:
        queued = set(r.restore_queue)
        more = tuple(a for a in reversed(r.changed) if r.status(a).restorable and a not in queued)
        trigger = r.trigger or r.budget.describe()
        return replace(
            r, watching=frozenset(), restore_queue=(*r.restore_queue, *more), trigger=trigger
        ), [CancelChecks()] if cancel else []
    outcome = r.phase.outcome
    if outcome is None:
        return r, []
    left = r.budget.agents if outcome is Outcome.DONE else ()
    incident: list[Command] = []
    if outcome is not Outcome.ABORTED and (outcome is not Outcome.DONE or r.budget.spent):
        incident.append(
            WriteIncident(
                trigger=r.trigger or r.budget.describe(),
                failed=r.budget.agents,
                restored=r.agents_in(S.RESTORED),
                restore_failed=r.agents_in(S.RESTORE_FAILED),
            )
        )
    return r, [*incident, Finish(outcome, left)]


def _apply(r: Rollout, agent: str) -> ApplyBox:
    step = r.spec.steps[agent]
    return ApplyBox(
        agent=agent,
        wave=r.wave,
        target_sha=step.target_sha,
        pre_sha=r.spec.pre_shas[agent],
        delivery=step.delivery,
        activation=step.activation,
        stamp_sha=step.stamp_sha,
        stamp_revision=step.stamp_revision,
    )


def _restore(r: Rollout, agent: str) -> RestoreBox:
    return RestoreBox(agent, r.spec.pre_shas[agent], r.spec.steps[agent].activation)


def _fill_slots(r: Rollout) -> tuple[Rollout, list[Command]]:
    """Start queued restores, then (while applying) the wave's next boxes, up to `parallel`."""
    free = r.parallel - len(r.busy)
    wave = r.current_wave
    take: tuple[str, ...] = ()
    if r.phase is P.APPLYING and wave is not None:
        room = max(0, free - len(r.restore_queue))
        take = wave.agents[r.cursor : r.cursor + room]
    restores = r.restore_queue[: max(0, free)]
    if not restores and not take:
        return r, []
    statuses = {**dict.fromkeys(restores, S.RESTORING), **dict.fromkeys(take, S.APPLYING)}
    cmds: list[Command] = [*(_restore(r, a) for a in restores), *(_apply(r, a) for a in take)]
    return replace(
        r,
        boxes=r.with_status(statuses),
        busy=r.busy | statuses.keys(),
        restore_queue=r.restore_queue[len(restores) :],
        cursor=r.cursor + len(take),
    ), cmds


def step(r: Rollout, ev: Event) -> tuple[Rollout, list[Command]]:
    """Apply one event; return the next state and the commands for the driver.

    Raises:
        IllegalTransition: the phase does not accept this type of event.
        UnexpectedEvent: the event names a box or wave the machine is not waiting on.
    """
    to = EVENT_TRANSITIONS.get((r.phase, type(ev)))
    if to is None:
        raise IllegalTransition(r.phase, ev)
    r = _note(r, ev)
    cmds: list[Command] = []
    cancel = _checks_running(r, ev)
    came_from, r = r.phase, replace(r, phase=to)
    while True:
        if r.phase is not came_from:
            r, entered = _enter(r, cancel)
            cmds.extend(entered)
        came_from = r.phase
        fired = next((to for p, _, ok, to in STATE_TRANSITIONS if p is r.phase and ok(r)), None)
        if fired is None:
            break
        r = replace(r, phase=fired)
    r, started = _fill_slots(r)
    return r, [*cmds, *started]


def fold(r: Rollout, events: Iterable[Event]) -> Rollout:
    """The state after `events`, one `step` at a time: how a journaled rollout resumes."""
    return reduce(lambda s, ev: step(s, ev)[0], events, r)


def outstanding(r: Rollout) -> list[Command]:
    """The commands in flight in state `r`: what a resumed driver must finish (or re-check)."""
    cmds: list[Command] = []
    wave = r.current_wave
    if r.phase is P.PREFLIGHT:
        cmds.append(Preflight())
    for agent in sorted(r.busy):
        cmds.append(_restore(r, agent) if r.status(agent) is S.RESTORING else _apply(r, agent))
    if r.watching:
        cmds.append(Watch(r.wave, tuple(sorted(r.watching))))
    if r.phase is P.SOAKING and wave is not None:
        cmds.append(Soak(r.wave, wave.soak_s))
    if r.phase is P.GATING and wave is not None:
        healthy = tuple(a for a in wave.agents if r.status(a) is S.HEALTHY)
        cmds.append(RunGates(r.wave, healthy, wave.gates))
    return cmds
