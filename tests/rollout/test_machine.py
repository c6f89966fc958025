"""The rollout machine, driven by a scripted fleet: waves, budget, gates, rollback, interrupts."""

from __future__ import annotations

import pytest
from plan.builders import fleet_changes, plan_of

from reconciler.rollout import (
    EVENT_TRANSITIONS,
    ApplyBox,
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxStatus,
    CancelChecks,
    Finish,
    IllegalTransition,
    Interrupted,
    Outcome,
    Phase,
    Preflight,
    PreflightFailed,
    PreflightPassed,
    RestoreBox,
    Rollout,
    RunGates,
    Soak,
    SoakOver,
    Started,
    UnexpectedEvent,
    Verdict,
    Watch,
    WatchdogFailed,
    WatchdogPassed,
    WriteIncident,
    step,
)

from .sim import Script, run

FOUR_WAVES = plan_of(fleet_changes(40))  # waves of 1, 4, 5 and 30


def _wave_agents(index: int) -> tuple[str, ...]:
    return FOUR_WAVES.waves[index].agents


class TestHappyPath:
    def test_four_waves_each_watched_soaked_gated(self) -> None:
        """Every wave is applied, watched, soaked by the clock and gated, then DONE (exit 0)."""
        done = run(FOUR_WAVES)
        assert [len(w.agents) for w in FOUR_WAVES.waves] == [1, 4, 5, 30]
        assert done.state.phase is Phase.DONE
        assert done.finish == Finish(Outcome.DONE)
        assert done.finish.outcome.exit_code == 0
        assert done.clock.elapsed == 4 * 600
        assert [c.wave for c in done.of_type(RunGates)] == [0, 1, 2, 3]
        assert [c.agents for c in done.of_type(Watch)] == [w.agents for w in FOUR_WAVES.waves]
        assert all(done.state.status(a) is BoxStatus.HEALTHY for a in FOUR_WAVES.agents)
        assert not done.of_type(RestoreBox) and not done.of_type(WriteIncident)

    def test_boxes_are_applied_in_plan_order(self) -> None:
        """ApplyBox commands follow the plan's order, wave after wave."""
        done = run(FOUR_WAVES)
        assert tuple(c.agent for c in done.of_type(ApplyBox)) == FOUR_WAVES.agents

    def test_no_more_than_parallel_boxes_in_flight(self) -> None:
        """The machine never has more than `parallel` box operations out at once."""
        for parallel in (1, 2, 7):
            state = Rollout.start(FOUR_WAVES)
            done = run(FOUR_WAVES, parallel=parallel)
            for ev in done.events:
                state, _ = step(state, ev)
                assert len(state.busy) <= parallel

    def test_apply_box_carries_what_the_driver_needs(self) -> None:
        """An ApplyBox names target, pre-change sha, delivery, activation and the stamp seen."""
        first = run(FOUR_WAVES).of_type(ApplyBox)[0]
        box = FOUR_WAVES.box(first.agent)
        assert (first.target_sha, first.pre_sha, first.stamp_sha, first.stamp_revision) == (
            box.target_sha,
            box.pre_sha,
            box.stamp_sha,
            box.stamp_revision,
        )
        assert (first.delivery, first.activation) == (box.delivery, box.activation)

    def test_empty_plan_is_done_at_once(self) -> None:
        """A plan with nothing to change is DONE right after preflight."""
        done = run(plan_of([]))
        assert [type(e) for e in done.events] == [Started, PreflightPassed]
        assert done.finish.outcome is Outcome.DONE


class TestRollback:
    def test_failure_in_wave_two_rolls_back_waves_one_and_two(self) -> None:
        """With no budget, a box failing in wave 2 restores every box of waves 1 and 2."""
        victim = _wave_agents(1)[2]
        done = run(FOUR_WAVES, Script(fail_apply={victim: ApplyStep.RELOAD}))
        touched = {*_wave_agents(0), *_wave_agents(1)}
        assert done.state.phase is Phase.ROLLED_BACK
        assert done.finish.outcome.exit_code == 3
        assert {c.agent for c in done.of_type(RestoreBox)} == touched
        assert {c.agent for c in done.of_type(ApplyBox)} == touched
        incident = done.of_type(WriteIncident)[0]
        assert set(incident.restored) == touched and incident.failed == (victim,)
        assert f"{victim} (apply failed at reload: exit status 1)" in incident.trigger

    def test_restore_puts_back_the_pre_change_sha(self) -> None:
        """Each RestoreBox carries the box's pre-change sha and its activation."""
        done = run(FOUR_WAVES, Script(fail_apply={_wave_agents(1)[0]: ApplyStep.VERIFY}))
        for cmd in done.of_type(RestoreBox):
            box = FOUR_WAVES.box(cmd.agent)
            assert (cmd.pre_sha, cmd.activation) == (box.pre_sha, box.activation)

    def test_failed_box_first_then_most_recent_first(self) -> None:
        """Rollback restores the failed box first, then the rest newest first."""
        victim = _wave_agents(2)[0]
        done = run(FOUR_WAVES, Script(fail_watch={victim: Verdict.STALLED}), parallel=1)
        restored = [c.agent for c in done.of_type(RestoreBox)]
        changed = [c.agent for c in done.of_type(ApplyBox)]
        assert restored == [victim, *(a for a in changed[::-1] if a != victim)]

    def test_failure_before_any_write_needs_no_restore(self) -> None:
        """A box that failed at its lease was not touched: it is not restored."""
        victim = _wave_agents(1)[1]
        done = run(FOUR_WAVES, Script(fail_apply={victim: ApplyStep.LEASE}))
        assert victim not in {c.agent for c in done.of_type(RestoreBox)}
        assert done.state.status(victim) is BoxStatus.FAILED_UNTOUCHED
        assert done.state.phase is Phase.ROLLED_BACK

    def test_gate_failure_rolls_back_everything_whatever_the_budget(self) -> None:
        """A failed gate restores every changed box even with budget to spare."""
        plan = plan_of(fleet_changes(40), budget=10)
        done = run(plan, Script(fail_gates_wave=2))
        touched = {a for w in plan.waves[:3] for a in w.agents}
        assert done.state.phase is Phase.ROLLED_BACK
        assert {c.agent for c in done.of_type(RestoreBox)} == touched
        assert CancelChecks() not in done.commands  # gates had answered: nothing to cancel
        assert (
            "gates failed in wave 3: task-errors: 9% > 5%" in done.of_type(WriteIncident)[0].trigger
        )

    def test_restore_failure_is_rollback_failed_and_others_go_on(self) -> None:
        """A box that cannot be restored ends ROLLBACK_FAILED (exit 4); the rest are restored."""
        first = _wave_agents(0)[0]
        done = run(
            FOUR_WAVES,
            Script(
                fail_apply={_wave_agents(1)[3]: ApplyStep.WRITE}, fail_restore=frozenset({first})
            ),
        )
        assert done.state.phase is Phase.ROLLBACK_FAILED
        assert done.finish.outcome.exit_code == 4
        incident = done.of_type(WriteIncident)[0]
        assert incident.restore_failed == (first,)
        assert set(incident.restored) == {*_wave_agents(1)}

    def test_watchdog_failure_beyond_budget_rolls_back(self) -> None:
        """A box failing its watchdog with no budget rolls back the whole rollout."""
        victim = _wave_agents(1)[0]
        done = run(FOUR_WAVES, Script(fail_watch={victim: Verdict.NOT_LOADED}))
        assert done.state.phase is Phase.ROLLED_BACK
        assert CancelChecks() in done.commands  # the wave's other boxes were still watched
        assert "watchdog not-loaded" in done.of_type(WriteIncident)[0].trigger


class TestBudget:
    def test_budget_of_one_restores_that_box_and_finishes(self) -> None:
        """Within the budget only the failed box is restored; the rollout goes on to DONE."""
        plan = plan_of(fleet_changes(40), budget=1)
        victim = plan.waves[1].agents[0]
        done = run(plan, Script(fail_apply={victim: ApplyStep.RELOAD}))
        assert done.state.phase is Phase.DONE
        assert [c.agent for c in done.of_type(RestoreBox)] == [victim]
        assert done.finish == Finish(Outcome.DONE, left_behind=(victim,))
        assert done.of_type(WriteIncident)[0].failed == (victim,)
        assert len(done.of_type(ApplyBox)) == 40

    def test_budget_is_cumulative_across_waves(self) -> None:
        """One failure in wave 2 and one in wave 3 exceed a budget of 1: rollback."""
        plan = plan_of(fleet_changes(40), budget=1)
        fails = {plan.waves[1].agents[0]: ApplyStep.RELOAD}
        done = run(
            plan, Script(fail_apply=fails, fail_watch={plan.waves[2].agents[1]: Verdict.DEAD})
        )
        assert done.state.phase is Phase.ROLLED_BACK
        assert "2 boxes failed, budget 1" in done.of_type(WriteIncident)[0].trigger

    def test_failed_watchdog_within_budget_is_restored_and_not_gated(self) -> None:
        """A box failing its watchdog within budget is restored and left out of the gates."""
        plan = plan_of(fleet_changes(40), budget="5%")
        victim = plan.waves[2].agents[0]
        done = run(plan, Script(fail_watch={victim: Verdict.STALE}))
        assert done.state.phase is Phase.DONE
        gates = done.of_type(RunGates)[2]
        assert victim not in gates.agents and len(gates.agents) == 4
        assert done.state.status(victim) is BoxStatus.RESTORED

    def test_lone_canary_failing_within_budget_still_gates_the_wave(self) -> None:
        """With the only canary restored, the wave's gates run on no boxes (and fail closed)."""
        plan = plan_of(fleet_changes(40), budget=2)
        canary = plan.waves[0].agents[0]
        done = run(plan, Script(fail_apply={canary: ApplyStep.VERIFY}))
        assert done.of_type(RunGates)[0].agents == ()
        assert not [c for c in done.of_type(Watch) if c.wave == 0]


class TestInterrupt:
    def test_interrupt_between_boxes_rolls_back(self) -> None:
        """Ctrl-C mid-wave stops new applies; boxes in flight finish and everything is restored."""
        done = run(FOUR_WAVES, Script(interrupt_after=14), parallel=3)
        assert done.state.phase is Phase.ROLLED_BACK
        applied = {c.agent for c in done.of_type(ApplyBox)}
        assert {c.agent for c in done.of_type(RestoreBox)} == applied
        assert len(applied) < 40
        assert done.of_type(WriteIncident)[0].trigger == "interrupted by the operator"

    def test_interrupt_while_soaking_cancels_the_checks(self) -> None:
        """An interrupt during a soak tells the driver to cancel the checks, then restores."""
        state = Rollout.start(FOUR_WAVES)
        canary = _wave_agents(0)[0]
        for ev in (Started(2), PreflightPassed(), BoxApplied(canary), WatchdogPassed(canary)):
            state, cmds = step(state, ev)
        assert state.phase is Phase.SOAKING and cmds == [Soak(0, 600)]
        state, cmds = step(state, Interrupted())
        assert cmds[0] == CancelChecks()
        assert cmds[1] == RestoreBox(
            canary, FOUR_WAVES.box(canary).pre_sha, FOUR_WAVES.box(canary).activation
        )
        state, cmds = step(state, SoakOver(0))  # late: ignored
        assert state.phase is Phase.ROLLING_BACK and cmds == []

    def test_interrupt_before_any_write_aborts(self) -> None:
        """Interrupted during preflight: nothing changed, ABORTED (exit 1), no incident."""
        state, _ = step(Rollout.start(FOUR_WAVES), Started())
        state, cmds = step(state, Interrupted())
        assert state.phase is Phase.ABORTED
        assert cmds == [Finish(Outcome.ABORTED)]
        assert Outcome.ABORTED.exit_code == 1

    def test_failed_preflight_aborts(self) -> None:
        """A failed preflight ends the rollout before any box is touched."""
        state, cmds = step(Rollout.start(FOUR_WAVES), Started())
        assert cmds == [Preflight()]
        state, cmds = step(state, PreflightFailed("agent-0003 is unreachable"))
        assert state.phase is Phase.ABORTED
        assert state.trigger == "preflight failed: agent-0003 is unreachable"


class TestRefusals:
    def test_event_not_in_the_table_is_refused(self) -> None:
        """SoakOver while applying is illegal; the state is untouched and still usable."""
        state, _ = step(Rollout.start(FOUR_WAVES), Started())
        state, _ = step(state, PreflightPassed())
        before = state
        with pytest.raises(IllegalTransition, match="SoakOver is not accepted in phase applying"):
            step(state, SoakOver(0))
        assert state == before
        canary = _wave_agents(0)[0]
        assert step(state, BoxApplied(canary))[0].status(canary) is BoxStatus.APPLIED

    def test_box_not_in_flight_is_refused(self) -> None:
        """A result for a box the machine did not start is refused, naming its status."""
        state, _ = step(Rollout.start(FOUR_WAVES), Started())
        state, _ = step(state, PreflightPassed())
        stranger = _wave_agents(3)[0]
        with pytest.raises(UnexpectedEvent, match=f"{stranger} is pending, not applying"):
            step(state, BoxFailed(stranger, ApplyStep.WRITE, "x"))

    def test_wrong_wave_is_refused(self) -> None:
        """A soak or gate result for another wave than the current one is refused."""
        state = Rollout.start(FOUR_WAVES)
        canary = _wave_agents(0)[0]
        for ev in (Started(), PreflightPassed(), BoxApplied(canary), WatchdogPassed(canary)):
            state, _ = step(state, ev)
        with pytest.raises(UnexpectedEvent, match="the current wave is 0"):
            step(state, SoakOver(1))

    def test_terminal_phases_accept_nothing(self) -> None:
        """After the end no event is accepted."""
        done = run(plan_of(fleet_changes(3)))
        with pytest.raises(IllegalTransition, match="nothing, the rollout is over"):
            step(done.state, Interrupted())
        assert not any(phase.terminal for phase, _ in EVENT_TRANSITIONS)

    def test_events_check_their_invariants(self) -> None:
        """Malformed events are refused when built."""
        with pytest.raises(ValueError, match="failing Verdict"):
            WatchdogFailed("a", Verdict.OK, "fine")
        with pytest.raises(TypeError, match="non-empty str"):
            BoxApplied("")
        with pytest.raises(ValueError, match="at least 1"):
            Started(parallel=0)
