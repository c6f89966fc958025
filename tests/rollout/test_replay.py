"""Resuming is a fold: any valid event sequence, replayed through JSON, rebuilds the state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from plan.builders import fleet_changes, plan_of

from reconciler.plan import Plan
from reconciler.rollout import (
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    BoxStatus,
    Event,
    GateFigure,
    GatesFailed,
    GatesPassed,
    Interrupted,
    Phase,
    PreflightFailed,
    PreflightPassed,
    Rollout,
    SoakOver,
    Started,
    Verdict,
    WatchdogFailed,
    WatchdogPassed,
    fold,
    outstanding,
    step,
)
from reconciler.rollout.records import event_from_record, to_record

PLANS = [
    plan_of(fleet_changes(12)),
    plan_of(fleet_changes(12), budget=2),
    plan_of(fleet_changes(7), waves=(2, "50%", "100%"), budget="30%"),
]
BAD = (GateFigure("task-errors", False, "too few samples"),)
GOOD = (
    Started,
    PreflightPassed,
    BoxApplied,
    BoxRestored,
    WatchdogPassed,
    SoakOver,
    GatesPassed,
)


def valid_events(r: Rollout) -> list[Event]:
    """Every event a driver could truthfully report in state `r`, late ones included."""
    p = r.phase
    if p.terminal:
        return []
    if p is Phase.PLANNED:
        return [Started(1), Started(3), Interrupted()]
    if p is Phase.PREFLIGHT:
        return [PreflightPassed(), PreflightFailed("a box is unreachable"), Interrupted()]
    out: list[Event] = [Interrupted()]
    if p is Phase.ROLLING_BACK:  # late results of cancelled checks: ignored
        late_box = next(iter(r.spec.steps))
        out += [SoakOver(r.wave), GatesPassed(r.wave), WatchdogPassed(late_box)]
    for agent in sorted(r.busy):
        if r.status(agent) is BoxStatus.APPLYING:
            out += [
                BoxApplied(agent),
                BoxFailed(agent, ApplyStep.LEASE, "held"),
                BoxFailed(agent, ApplyStep.RELOAD, "exit 1"),
            ]
        else:
            out += [BoxRestored(agent), BoxRestoreFailed(agent, "exit 1")]
    for agent in sorted(r.watching):
        out += [WatchdogPassed(agent), WatchdogFailed(agent, Verdict.STALLED, "no flow")]
    if p is Phase.SOAKING:
        out.append(SoakOver(r.wave))
    if p is Phase.GATING:
        out += [GatesPassed(r.wave), GatesFailed(r.wave, BAD)]
    return out


@st.composite
def rollouts(draw: st.DrawFn) -> tuple[Plan, list[Event], list[Rollout]]:
    """A plan, a valid event sequence for it, and the state after each event."""
    plan = draw(st.sampled_from(PLANS))
    state = Rollout.start(plan)
    events: list[Event] = []
    states: list[Rollout] = []
    for _ in range(400):
        choices = valid_events(state)
        if not choices:
            break
        good = [e for e in choices if isinstance(e, GOOD)]
        bad = [e for e in choices if not isinstance(e, GOOD)]
        mischief = draw(st.integers(0, 24)) == 0 or not good
        ev = draw(st.sampled_from(bad if mischief and bad else good))
        state, _ = step(state, ev)
        events.append(ev)
        states.append(state)
    return plan, events, states


@settings(max_examples=150, deadline=None)
@given(rollouts())
def test_fold_equals_incremental_steps(run: tuple[Plan, list[Event], list[Rollout]]) -> None:
    """Folding any prefix of the events gives the state the driver had at that point."""
    plan, events, states = run
    start = Rollout.start(plan)
    for k in (0, len(events) // 3, len(events) // 2, len(events)):
        want = states[k - 1] if k else start
        assert fold(start, events[:k]) == want


@settings(max_examples=150, deadline=None)
@given(rollouts())
def test_replay_through_json_rebuilds_the_state(
    run: tuple[Plan, list[Event], list[Rollout]],
) -> None:
    """Events written as journal records and read back fold to the very same state."""
    plan, events, states = run
    again = [event_from_record(to_record(ev)) for ev in events]
    assert again == events
    assert fold(Rollout.start(plan), again) == (states[-1] if states else Rollout.start(plan))


@settings(max_examples=150, deadline=None)
@given(rollouts())
def test_invariants_hold_at_every_step(run: tuple[Plan, list[Event], list[Rollout]]) -> None:
    """Never more than `parallel` in flight; a finished rollout has nothing left out."""
    plan, _events, states = run
    for state in states:
        assert len(state.busy) <= state.parallel
        assert state.budget.allowed == plan.failure_budget
        if state.phase.terminal:
            assert state.settled and not state.watching
            assert outstanding(state) == []
    last = states[-1] if states else Rollout.start(plan)
    if last.phase is Phase.ROLLED_BACK:
        assert all(last.status(a) is BoxStatus.RESTORED for a in last.changed)
    if last.phase is Phase.DONE:
        statuses = {last.status(a) for a in plan.agents}
        assert statuses <= {BoxStatus.HEALTHY, BoxStatus.RESTORED, BoxStatus.FAILED_UNTOUCHED}
        assert len(last.budget.spent) <= plan.failure_budget


def test_outstanding_lists_what_is_in_flight() -> None:
    """After a crash mid-wave, `outstanding` names exactly the boxes still out."""
    plan = PLANS[0]
    state = Rollout.start(plan)
    for ev in (Started(3), PreflightPassed()):
        state, _ = step(state, ev)
    canary = plan.waves[0].agents[0]
    assert [c.agent for c in outstanding(state)] == [canary]  # type: ignore[attr-defined]
    state, _ = step(state, BoxApplied(canary))
    assert [type(c).__name__ for c in outstanding(state)] == ["Watch"]
