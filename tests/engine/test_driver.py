"""The Driver on FakeBoxes and a FakeClock: slots, rollback, soak, box timeouts, journal.

In process, no network: each FakeBox operation yields to the event loop once, so box
operations started together interleave; time is a FakeClock (a soak of minutes takes
milliseconds) except the box timeout, which is real time by design (asyncio.timeout)
and is set to a fraction of a second where a test waits for it. No gate runner is
passed: the driver then gates on the watchdog only (its `gate_runner=None` mode,
noted as a warning); test_gates.py runs the real GateRunner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from reconciler.journal.sqlite import SqliteJournal
from reconciler.model.box import Health, parse_stamp
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue, Recorder
from reconciler.transport.fake import FakeBox, hang_on

from .helpers import NEW_REV, Fleet, in_flight_meter, make_fleet, reload_fails


class Tap(Recorder):
    """A Recorder that also calls `on_note` for every note (to act at a moment of the run)."""

    def __init__(self, on_note: Callable[[str, Mapping[str, JsonValue]], None]) -> None:
        super().__init__()
        self.on_note = on_note

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        super().note(kind, fields)
        self.on_note(kind, fields)


def no_leases_left(fleet: Fleet) -> bool:
    return not any(str(d).endswith(".lease") for box in fleet.boxes.values() for d in box.dirs)


class TestParallelSlots:
    @pytest.mark.parametrize("parallel", [1, 3, 5])
    async def test_never_more_than_parallel_boxes_in_flight(self, parallel: int) -> None:
        """Between a box's lease take and its release it is in flight; the driver has at
        most `parallel` such boxes at once, and does fill every slot (measured by the hooks)."""
        fleet = make_fleet(12, waves=(1, "100%"))
        meter, hook = in_flight_meter(fleet)
        for name, box in fleet.boxes.items():
            box.fault = hook(name)
        result = await fleet.run(parallel=parallel)
        assert result.outcome is Outcome.DONE
        assert meter["max"] == parallel
        assert meter["now"] == 0
        assert all(fleet.on_new(a) for a in fleet.boxes)


class TestRollback:
    async def test_a_failing_box_in_wave_two_stops_new_starts_and_restores_the_changed(
        self,
    ) -> None:
        """Budget 0: the first box of wave 2 fails at its reload; its slot-mate finishes and
        is restored with it and wave 1; the rest of wave 2 and all of wave 3 are never
        touched (no round trip at all)."""
        fleet = make_fleet(10, waves=(1, 5, "100%"))
        w1, w2, w3 = fleet.wave(0), fleet.wave(1), fleet.wave(2)
        failing, mate = w2[0], w2[1]
        fleet.boxes[failing].handler = reload_fails
        result = await fleet.run(parallel=2)

        assert result.outcome is Outcome.ROLLED_BACK
        failed = fleet.notes("box.failed")
        assert [(f["agent"], f["step"]) for f in failed] == [(failing, "reload")]
        assert "config rejected" in str(failed[0]["reason"])
        assert {n["agent"] for n in fleet.notes("box.restored")} == {*w1, failing, mate}
        for name in (*w1, failing, mate):
            assert fleet.on_old(name), name
            stamp = parse_stamp(fleet.boxes[name].read(f"{fleet.agents[name].config_path}"
                                                      ".stamp.json") or b"")  # fmt: skip
            assert stamp.outcome == "rolled-back"
        for name in (*w2[2:], *w3):
            assert fleet.boxes[name].round_trips == 0, name
            assert fleet.on_old(name)
        assert no_leases_left(fleet)

    async def test_an_interrupt_cancels_the_soak_in_flight_then_restores(self) -> None:
        """A wave-2 box's health hangs in the middle of the soak; an interrupt arrives: the
        soak check (stuck on that box) is cancelled, no gate runs for wave 2, and every
        changed box is restored. Without the cancel the run would never end."""
        fleet = make_fleet(4, waves=(1, "100%"))
        stuck = fleet.wave(1)[0]
        driver = None

        def on_note(kind: str, fields: Mapping[str, JsonValue]) -> None:
            if kind == "soak.tick" and fields["wave"] == 2 and fleet.boxes[stuck].fault is None:
                fleet.boxes[stuck].fault = hang_on("health", times=1)
                assert driver is not None
                asyncio.get_running_loop().call_later(0.05, driver.interrupt)

        fleet.recorder = Tap(on_note)
        driver = fleet.driver()
        result = await asyncio.wait_for(driver.run(), 10)

        assert result.outcome is Outcome.ROLLED_BACK
        assert [op for op, _ in fleet.boxes[stuck].cancelled] == ["health"]
        assert [n["wave"] for n in fleet.notes("gates.passed")] == [1]
        assert not fleet.notes("gates.failed")
        assert "interrupted" in str(fleet.notes("rollback.started")[0]["trigger"])
        assert all(fleet.on_old(a) for a in fleet.boxes)


def working(box: FakeBox) -> Health:
    """A busy agent that gets through its queue: 5 more tasks each time it is asked."""
    box.tasks_processed += 5
    box.queue_depth = 3
    return Health(alive=True, heartbeat_age_s=0.5, loaded_sha256=box.loaded_sha,
                  tasks_processed=box.tasks_processed, queue_depth=3, uptime_s=3600.0)  # fmt: skip


def stalled(box: FakeBox) -> Health:
    """A stuck agent: a queue, and no task processed, ever."""
    return Health(alive=True, heartbeat_age_s=0.5, loaded_sha256=box.loaded_sha,
                  tasks_processed=7, queue_depth=5, uptime_s=3600.0)  # fmt: skip


class TestSoak:
    async def test_idle_boxes_end_the_soak_at_its_time_not_the_stall_window(self) -> None:
        """Idle boxes (empty queue) are flowing: each 10 s soak ends at 10 s, well before
        the 60 s stall window (the clock moves only in the soaks)."""
        fleet = make_fleet(3, waves=(1, "100%"), soak_s=10)
        result = await fleet.run()
        assert result.outcome is Outcome.DONE
        assert fleet.clock.elapsed == 20
        assert not fleet.notes("soak.problem")
        # the time left is the soak's, not the 60 s stall window's (the plan said 10 s)
        assert fleet.notes("soak.tick")[0]["remaining_s"] == 10

    async def test_working_boxes_end_a_zero_soak_after_one_sample(self) -> None:
        """Soak 0 (a revert's waves): once every box was seen processing since its watch
        sample, the wave goes on: one quarter of the 1 s interval per wave instead of the
        60 s window."""
        fleet = make_fleet(3, waves=(1, "100%"), soak_s=0)
        for box in fleet.boxes.values():
            box.health = working
        result = await fleet.run()
        assert result.outcome is Outcome.DONE
        assert fleet.clock.elapsed == 0.5
        assert fleet.clock.sleeps == [0.25, 0.25]

    async def test_a_zero_soak_backs_off_to_the_interval_while_a_box_is_not_yet_seen_working(
        self,
    ) -> None:
        """Soak 0 with a box that has not processed a task since its watch sample: the
        passes come at 0.25, 0.5, then every 1 s, until the box works."""
        fleet = make_fleet(1, waves=("100%",), soak_s=0)
        reads = 0

        def slow_starter(box: FakeBox) -> Health:
            """Stuck at 7 tasks for the verify and watch reads and two soak passes, then busy."""
            nonlocal reads
            reads += 1
            box.tasks_processed = max(box.tasks_processed, 7)
            return stalled(box) if reads <= 4 else working(box)

        for box in fleet.boxes.values():
            box.health = slow_starter
        result = await fleet.run()
        assert result.outcome is Outcome.DONE
        assert fleet.clock.sleeps == [0.25, 0.5, 1.0]

    async def test_a_stalled_box_holds_the_soak_to_the_window_then_fails_the_watchdog(
        self,
    ) -> None:
        """A wave-2 box with a queue and no progress keeps its wave soaking until the 60 s
        stall window is over, is judged STALLED there, fails the wave's watchdog gate and
        the rollout rolls back, the verdict (blocked revision) stamped on every box."""
        fleet = make_fleet(3, waves=(1, "100%"), soak_s=10)
        bad = fleet.wave(1)[0]
        fleet.boxes[bad].health = stalled
        result = await fleet.run()

        assert result.outcome is Outcome.ROLLED_BACK
        assert fleet.clock.elapsed == 10 + 60
        problems = fleet.notes("soak.problem")
        assert [(p["agent"], p["verdict"]) for p in problems] == [(bad, "stalled")]
        (failed,) = fleet.notes("gates.failed")
        assert failed["wave"] == 2
        assert bad in str(failed["figures"])
        assert all(fleet.on_old(a) for a in fleet.boxes)
        for name, box in fleet.boxes.items():
            stamp = parse_stamp(box.read(f"{fleet.agents[name].config_path}.stamp.json") or b"")
            assert stamp.blocked_revision == NEW_REV


class TestBoxTimeout:
    async def test_a_hung_reload_fails_the_box_after_its_timeout_then_it_is_restored(
        self,
    ) -> None:
        """The reload of a wave-2 box never answers: after box_timeout_s (real time, 0.3 s)
        the box fails at `reload` with a "did not finish within" reason, the hung command
        is cancelled, its lease released, and the box is restored (its second reload works)."""
        fleet = make_fleet(3, waves=(1, "100%"))
        slow = fleet.wave(1)[0]
        fleet.boxes[slow].fault = hang_on("run", times=1)
        result = await asyncio.wait_for(fleet.run(box_timeout_s=0.3), 10)

        assert result.outcome is Outcome.ROLLED_BACK
        (failed,) = fleet.notes("box.failed")
        assert (failed["agent"], failed["step"]) == (slow, "reload")
        assert "did not finish within 0.3s" in str(failed["reason"])
        assert fleet.boxes[slow].cancelled == [("run", ("agentctl", "reload"))]
        assert slow in {n["agent"] for n in fleet.notes("box.restored")}
        assert all(fleet.on_old(a) for a in fleet.boxes)
        assert no_leases_left(fleet)


class TestJournal:
    def _closed(self, journal: SqliteJournal, rollout_id: str) -> list[str]:
        """The boundaries journaled, after checking every intent has exactly one result."""
        steps = journal.steps(rollout_id)
        intents = {s.seq: s for s in steps if s.kind == "intent"}
        results = [s.intent for s in steps if s.kind == "result"]
        assert sorted(r for r in results if r is not None) == sorted(intents)
        assert journal.open_intents(rollout_id) == []
        return [str(s.body["data"]["boundary"]) for s in intents.values()]  # type: ignore[index]

    async def test_every_intent_of_a_rolled_back_run_has_a_result(self, tmp_path: Path) -> None:
        """A rollout with a failed box and a rollback, journaled in SQLite: apply, watch,
        soak, gates, restore and incident boundaries all have an intent and its result."""
        fleet = make_fleet(4, waves=(1, "100%"))
        fleet.boxes[fleet.wave(1)[1]].handler = reload_fails
        journal = SqliteJournal(tmp_path, now=fleet.clock.now)
        result = await fleet.run(journal=journal, parallel=1)

        assert result.outcome is Outcome.ROLLED_BACK
        names = set(self._closed(journal, result.rollout_id))
        assert names >= {
            "preflight", "apply.lease", "apply.stamp-check", "apply.write", "apply.activate",
            "apply.verify", "apply.stamp", "apply.release", "watch", "soak", "gates",
            "restore.lease", "restore.write", "restore.activate", "restore.verify",
            "restore.stamp", "restore.release", "incident",
        }  # fmt: skip
        assert journal.rollout(result.rollout_id).outcome is Outcome.ROLLED_BACK

    async def test_the_incident_intent_is_closed_without_an_incident_writer(
        self, tmp_path: Path
    ) -> None:
        """A driver given a journal but no incident writer (a library caller) still closes
        the `incident` intent it journaled when the rollout rolled back."""
        fleet = make_fleet(2, waves=(1, "100%"))
        fleet.boxes[fleet.wave(1)[0]].handler = reload_fails
        journal = SqliteJournal(tmp_path, now=fleet.clock.now)
        result = await fleet.driver(journal=journal, incidents=False).run()
        assert result.outcome is Outcome.ROLLED_BACK
        assert "incident" in self._closed(journal, result.rollout_id)
        assert not fleet.notes("incident.written")

    async def test_a_check_cancelled_by_an_interrupt_closes_its_intent(
        self, tmp_path: Path
    ) -> None:
        """The soak, stuck on a hung health answer, is cancelled by an interrupt: its intent
        gets a result (not ok, "cancelled"), so nothing stays open in the journal."""
        fleet = make_fleet(4, waves=(1, "100%"))
        stuck = fleet.wave(1)[0]
        driver = None

        def on_note(kind: str, fields: Mapping[str, JsonValue]) -> None:
            if kind == "soak.tick" and fields["wave"] == 2 and fleet.boxes[stuck].fault is None:
                fleet.boxes[stuck].fault = hang_on("health", times=1)
                assert driver is not None
                asyncio.get_running_loop().call_later(0.05, driver.interrupt)

        fleet.recorder = Tap(on_note)
        journal = SqliteJournal(tmp_path, now=fleet.clock.now)
        driver = fleet.driver(journal=journal)
        result = await asyncio.wait_for(driver.run(), 10)

        assert result.outcome is Outcome.ROLLED_BACK
        self._closed(journal, result.rollout_id)
        not_ok = [s.body["data"] for s in journal.steps(result.rollout_id)
                  if s.kind == "result" and not s.body["ok"]]  # fmt: skip
        assert [(d["boundary"], "cancelled" in d["reason"]) for d in not_ok] == [("soak", True)]  # type: ignore[index,operator]

    async def test_a_timed_out_box_closes_its_open_intent(self, tmp_path: Path) -> None:
        """The apply cut short by the box timeout (inside `apply.activate`) closes that
        intent as not ok with the timeout's reason."""
        fleet = make_fleet(3, waves=(1, "100%"))
        slow = fleet.wave(1)[0]
        fleet.boxes[slow].fault = hang_on("run", times=1)
        journal = SqliteJournal(tmp_path, now=fleet.clock.now)
        result = await asyncio.wait_for(fleet.run(journal=journal, box_timeout_s=0.3), 10)

        assert result.outcome is Outcome.ROLLED_BACK
        self._closed(journal, result.rollout_id)
        not_ok = [(s.agent, s.body["data"]) for s in journal.steps(result.rollout_id)
                  if s.kind == "result" and not s.body["ok"]]  # fmt: skip
        assert len(not_ok) == 1
        agent, data = not_ok[0]
        assert agent == slow
        assert data["boundary"] == "apply.activate"  # type: ignore[index]
        assert "did not finish within 0.3s" in data["reason"]  # type: ignore[index,operator]
