"""The journal contract, on both backends (SQLite, PostgreSQL: tests/journal/conftest.py):
rollouts, intents, results, events, replay, history, and no secrets."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from plan.builders import fleet_changes, plan_of, sha
from rollout.sim import Script, run

from reconciler.journal import (
    Holder,
    JournalError,
    SqliteJournal,
    UnknownRollout,
    default_state_dir,
    open_state,
)
from reconciler.journal.db import FILE_NAME
from reconciler.journal.postgres import PostgresJournal
from reconciler.rollout import (
    ApplyBox,
    ApplyStep,
    BoxApplied,
    Outcome,
    Rollout,
    Started,
    fold,
)
from reconciler.rollout.records import RecordRefused
from reconciler.secrets.values import SecretValues
from reconciler.testing.clock import FakeClock

from .conftest import AnyJournal, Backend

HOLDER = Holder(user="alice", host="laptop", pid=4242)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(backend: Backend, clock: FakeClock) -> Iterator[SqliteJournal | PostgresJournal]:
    j = backend.journal(now=clock.now)
    yield j
    j.close()


def _apply_cmd(agent: str) -> ApplyBox:
    plan = plan_of(fleet_changes(3))
    box = plan.box(agent)
    return ApplyBox(agent, 0, box.target_sha, box.pre_sha, box.delivery, box.activation)


class TestRollouts:
    def test_begin_records_plan_pre_shas_and_holder(self, journal: AnyJournal) -> None:
        """A begun rollout keeps its plan, each box's pre-change sha and who started it."""
        plan = plan_of(fleet_changes(3))
        rid = journal.begin_rollout(plan, {"agent-0001": sha("seen-now")}, HOLDER)
        record = journal.rollout(rid)
        assert record.plan == plan
        assert record.pre_shas["agent-0001"] == sha("seen-now")
        assert record.pre_shas["agent-0000"] == plan.box("agent-0000").pre_sha
        assert (record.holder, record.fleet_id, record.plan_id) == (
            HOLDER,
            "acme-support",
            plan.plan_id,
        )
        assert not record.finished

    def test_pre_shas_for_unknown_agents_are_refused(self, journal: AnyJournal) -> None:
        """Pre-change shas must belong to the plan's boxes."""
        with pytest.raises(JournalError, match="not in the plan"):
            journal.begin_rollout(plan_of(fleet_changes(2)), {"stranger": None}, HOLDER)

    def test_unfinished_until_finished(self, journal: AnyJournal) -> None:
        """A rollout is listed as unfinished until `finish` records its outcome."""
        rid = journal.begin_rollout(plan_of(fleet_changes(2)), {}, HOLDER)
        assert [r.rollout_id for r in journal.unfinished()] == [rid]
        journal.finish(rid, Outcome.ROLLED_BACK, {"restored": ["agent-0000"]})
        assert journal.unfinished() == []
        record = journal.rollout(rid)
        assert record.outcome is Outcome.ROLLED_BACK
        assert record.summary == {"restored": ["agent-0000"]}

    def test_finished_rollout_takes_no_more_records(self, journal: AnyJournal) -> None:
        """Finishing twice, or recording after the finish, is refused naming the rollout."""
        rid = journal.begin_rollout(plan_of(fleet_changes(2)), {}, HOLDER)
        journal.finish(rid, Outcome.DONE, {})
        with pytest.raises(JournalError, match=f"rollout {rid} already finished"):
            journal.finish(rid, Outcome.DONE, {})
        with pytest.raises(JournalError, match="already finished"):
            journal.record_event(rid, Started())

    def test_unknown_rollout_is_named(self, journal: AnyJournal) -> None:
        """Asking for a rollout that does not exist says so and where to look."""
        with pytest.raises(UnknownRollout, match=r"no rollout r-nope.*reconcile history"):
            journal.events("r-nope")
        with pytest.raises(UnknownRollout):
            journal.record_event("r-nope", Started())

    def test_history_newest_first_by_fleet(self, journal: AnyJournal, clock: FakeClock) -> None:
        """History lists rollouts newest first, for one fleet or all, up to a limit."""
        plan = plan_of(fleet_changes(2))
        ids = []
        for _ in range(3):
            ids.append(journal.begin_rollout(plan, {}, HOLDER))
            clock.advance(60)
        assert [r.rollout_id for r in journal.history()] == ids[::-1]
        assert [r.rollout_id for r in journal.history("acme-support", limit=2)] == ids[:0:-1]
        assert journal.history("other-fleet") == []


class TestSteps:
    def test_events_replay_in_order(self, journal: AnyJournal) -> None:
        """Events come back equal and in the order they were recorded."""
        plan = plan_of(fleet_changes(20))
        done = run(plan, Script())
        rid = journal.begin_rollout(plan, {}, HOLDER)
        for ev in done.events:
            journal.record_event(rid, ev)
        assert journal.replay(rid) == done.events

    def test_replay_fold_rebuilds_the_state(self, journal: AnyJournal) -> None:
        """Folding the replayed events from the journaled plan gives the run's final state."""
        plan = plan_of(fleet_changes(20), budget=1)
        victim = plan.waves[1].agents[1]
        done = run(plan, Script(fail_apply={victim: ApplyStep.WRITE}))
        rid = journal.begin_rollout(plan, {}, HOLDER)
        for ev in done.events:
            journal.record_event(rid, ev)
        record = journal.rollout(rid)
        rebuilt = fold(Rollout.start(record.plan, record.pre_shas), journal.replay(rid))
        assert rebuilt == done.state

    def test_open_intents_are_those_without_a_result(self, journal: AnyJournal) -> None:
        """An intent with no result is open (a crash cut it short); one with a result is not."""
        rid = journal.begin_rollout(plan_of(fleet_changes(3)), {}, HOLDER)
        first = journal.record_intent(rid, "agent-0000", _apply_cmd("agent-0000"))
        second = journal.record_intent(
            rid, "agent-0001", _apply_cmd("agent-0001"), {"pre_sha": sha("x")}
        )
        journal.record_result(rid, first, ok=True, data={"loaded": True})
        journal.record_event(rid, BoxApplied("agent-0000"))
        open_ = journal.open_intents(rid)
        assert [s.seq for s in open_] == [second]
        assert open_[0].command() == _apply_cmd("agent-0001")
        assert open_[0].body["data"] == {"pre_sha": sha("x")}
        kinds = [(s.kind, s.agent) for s in journal.steps(rid)]
        assert kinds == [
            ("intent", "agent-0000"),
            ("intent", "agent-0001"),
            ("result", "agent-0000"),
            ("event", "agent-0000"),
        ]

    def test_result_needs_its_intent(self, journal: AnyJournal) -> None:
        """A result for an intent that does not exist is refused."""
        rid = journal.begin_rollout(plan_of(fleet_changes(1)), {}, HOLDER)
        with pytest.raises(JournalError, match="no intent 99"):
            journal.record_result(rid, 99, ok=False)

    def test_records_carry_the_clock_time(self, journal: AnyJournal, clock: FakeClock) -> None:
        """Each record is stamped with the injected clock's time."""
        rid = journal.begin_rollout(plan_of(fleet_changes(1)), {}, HOLDER)
        clock.advance(90)
        journal.record_event(rid, Started())
        assert journal.steps(rid)[0].at == clock.now()
        assert journal.rollout(rid).started_at.timestamp() == clock.now().timestamp() - 90


class TestDurability:
    def test_records_survive_a_reopen(self, backend: Backend, clock: FakeClock) -> None:
        """A second connection (a new process, after a crash) sees every record."""
        first = backend.journal(now=clock.now)
        rid = first.begin_rollout(plan_of(fleet_changes(2)), {}, HOLDER)
        first.record_event(rid, Started(parallel=2))
        first.close()
        again = backend.journal(now=clock.now)
        assert again.replay(rid) == [Started(parallel=2)]
        assert [r.rollout_id for r in again.unfinished("acme-support")] == [rid]
        again.close()

    def test_state_file_is_wal_with_full_sync(self, tmp_path: Path) -> None:
        """The state file runs in WAL mode, with synchronous=FULL on our connections."""
        state = open_state(tmp_path)
        conn = sqlite3.connect(tmp_path / FILE_NAME)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert state.journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        state.close()

    def test_default_state_dir_follows_xdg(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The default state dir is $XDG_STATE_HOME/reconciler, else ~/.local/state/reconciler."""
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
        assert default_state_dir() == tmp_path / "reconciler"
        monkeypatch.delenv("XDG_STATE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert default_state_dir() == tmp_path / ".local" / "state" / "reconciler"


class TestNoSecrets:
    SECRET = "sk-live-0123456789abcdef"

    def test_secret_values_in_intent_data_are_refused(self, journal: AnyJournal) -> None:
        """A SecretValues object in an intent's data is refused, naming where, not the value."""
        rid = journal.begin_rollout(plan_of(fleet_changes(1)), {}, HOLDER)
        values = SecretValues({"anthropic_api_key": self.SECRET})
        with pytest.raises(RecordRefused, match=r"intent data\.secrets: a SecretValues") as err:
            journal.record_intent(rid, "agent-0000", _apply_cmd("agent-0000"), {"secrets": values})  # type: ignore[dict-item]
        assert self.SECRET not in str(err.value)

    def test_secret_values_in_an_event_are_refused(self, journal: AnyJournal) -> None:
        """An event smuggling a SecretValues (past its own checks) is refused."""
        rid = journal.begin_rollout(plan_of(fleet_changes(1)), {}, HOLDER)
        ev = object.__new__(BoxApplied)
        object.__setattr__(ev, "agent", SecretValues({"k": self.SECRET}))
        with pytest.raises(RecordRefused):
            journal.record_event(rid, ev)

    def test_summary_with_secret_values_is_refused(self, journal: AnyJournal) -> None:
        """A finish summary holding SecretValues is refused and the rollout stays open."""
        rid = journal.begin_rollout(plan_of(fleet_changes(1)), {}, HOLDER)
        with pytest.raises(RecordRefused):
            journal.finish(rid, Outcome.DONE, {"s": SecretValues({"k": self.SECRET})})  # type: ignore[dict-item]
        assert journal.unfinished()

    def test_state_never_holds_a_secret_value(self, backend: Backend, tmp_path: Path) -> None:
        """After a whole rollout, refused attempts included, no byte of the value is stored."""
        state = backend.state()
        plan = plan_of(fleet_changes(6))
        rid = state.journal.begin_rollout(plan, {}, HOLDER)
        values = SecretValues({"anthropic_api_key": self.SECRET})
        for ev in run(plan).events:
            state.journal.record_event(rid, ev)
        with pytest.raises(RecordRefused):
            state.journal.record_intent(rid, None, _apply_cmd("agent-0000"), {"v": values})  # type: ignore[dict-item]
        state.journal.finish(rid, Outcome.DONE, {"secrets": values.names()})
        state.close()
        if backend.url is not None:
            with psycopg.connect(backend.url) as conn:
                for table in ("rollouts", "steps", "locks", "fences"):
                    rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()  # noqa: S608
                    assert rows or table in ("locks", "fences")
                    assert not any(self.SECRET in row[0] for row in rows), table
        for path in tmp_path.iterdir():
            assert self.SECRET.encode() not in path.read_bytes(), path
