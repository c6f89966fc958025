"""The journal's batches on both backends (SQLite, PostgreSQL): records held until one commit
writes them, and where the driver commits them (the durability boundary of journal/base.py).

A second journal on the same state (another connection, another session) stands for a
resume after a kill, or another machine: it sees what was committed and nothing that was
only held. A kill is the writer's connection closing inside its batch. Commits are counted
in the database: SQLite traces its connection's write transactions, PostgreSQL counts the
transaction ids handed out (one per write transaction, at its first write; a read takes
none).

Where the backends differ, the test says so: SQLite holds a batch's records in memory
(provisional negative seqs; `take_fence` leaves them held), PostgreSQL writes them into one
open transaction (real seqs; `take_fence` commits them with the fence). On both, the
writer's own reads see what it holds (SQLite commits it first, PostgreSQL reads its open
transaction), and a record for a finished rollout is refused (SQLite at the commit,
PostgreSQL at once).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator

import psycopg
import pytest

from reconciler.journal import JournalError, SqliteJournal
from reconciler.journal.base import Holder, Journal, StepRecord
from reconciler.journal.db import Now, connect, utc_now
from reconciler.journal.postgres import PostgresJournal
from reconciler.model.box import Health
from reconciler.plan.model import Plan
from reconciler.rollout.commands import Preflight
from reconciler.rollout.events import BoxApplied, Started
from reconciler.rollout.phases import Outcome, Phase
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox, Fault, OpTarget
from tests.engine.helpers import make_fleet

from .conftest import AnyJournal, Backend

HOLDER = Holder(user="tester", host="localhost", pid=1)
WRITES = frozenset({"mkdir", "write_atomic", "rename", "link", "remove", "rmdir", "rmtree", "run"})


def _plan() -> Plan:
    return make_fleet(2).plan


def _sqlite_commits(conn: sqlite3.Connection) -> Callable[[], int]:
    """Count the transactions that write (COMMIT, or an autocommitted INSERT/UPDATE)."""
    seen: list[str] = []
    in_txn = False

    def trace(sql: str) -> None:
        nonlocal in_txn
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            in_txn = True
        elif head.startswith(("COMMIT", "ROLLBACK")):
            in_txn = False
            if head.startswith("COMMIT"):
                seen.append("commit")
        elif head.startswith(("INSERT", "UPDATE")) and not in_txn:
            seen.append(head.split("(")[0].strip())

    conn.set_trace_callback(trace)
    return lambda: len(seen)


def _pg_commits(url: str) -> Callable[[], int]:
    """Write transactions begun on the server since now (each takes a transaction id at its
    first write): the ids handed out in between, less those the probes took (one each)."""

    def xid() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT txid_current()").fetchone()
            assert row is not None
            return int(row[0])

    start, probes = xid(), 0

    def count() -> int:
        nonlocal probes
        probes += 1
        return xid() - start - probes

    return count


def _writer(backend: Backend, now: Now = utc_now) -> tuple[AnyJournal, Callable[[], int]]:
    """The journal under test and a count of the write transactions it committed."""
    if backend.url is None:
        conn = connect(backend.path)
        commits = _sqlite_commits(conn)
        return SqliteJournal(conn=conn, now=now), commits
    journal = PostgresJournal(backend.url, now=now)
    return journal, _pg_commits(backend.url)


def _kill(j: AnyJournal) -> None:
    """The writing process dies inside its batch: its connection goes (an open PostgreSQL
    transaction is rolled back), its held records with it, and it never leaves the batch."""
    j.close()
    if isinstance(j, SqliteJournal):
        j._held = None
    else:
        j._batches = -1  # leaving the `with` then commits nothing


@pytest.fixture
def reader(backend: Backend) -> Iterator[AnyJournal]:
    """What a resume (or another machine) finds: a journal on a connection of its own."""
    j = backend.journal()
    try:
        yield j
    finally:
        j.close()


def _on_disk(reader: Journal) -> list[StepRecord]:
    """Every committed record of the journal's one rollout."""
    rollouts = reader.history(limit=1)
    return reader.steps(rollouts[0].rollout_id) if rollouts else []


def _text(step: StepRecord) -> str:
    return json.dumps(step.body)


def test_held_records_reach_the_disk_in_one_commit(backend: Backend, reader: AnyJournal) -> None:
    """In a batch `begin_rollout` is never held, every record is held until `commit()`,
    which writes them in one transaction; nested batches are one batch, leaving the
    outermost commits; a result names its intent (by the seq `record_intent` returned)."""
    j, commits = _writer(backend, FakeClock().now)
    plan = _plan()
    agent = plan.agents[0]
    try:
        with j.batch():
            rid = j.begin_rollout(plan, {}, HOLDER)
            assert reader.rollout(rid).rollout_id == rid  # never held
            begun = commits()
            j.record_event(rid, Started(2))
            intent = j.record_intent(rid, agent, Preflight(), {"boundary": "x"})
            if backend.name == "sqlite":
                assert intent < 0  # provisional until committed
            j.record_result(rid, intent, ok=True)
            j.record_event(rid, BoxApplied(agent))
            assert j.held == 4
            assert reader.steps(rid) == []  # another connection sees nothing held
            assert j.commit() == 4
            assert j.held == 0
            assert len(reader.steps(rid)) == 4
            with j.batch():  # nested: one batch
                late = j.record_intent(rid, agent, Preflight())
            assert len(reader.steps(rid)) == 4
        # leaving the outermost batch committed the last one: two commits, whatever the records
        assert commits() - begun == 2
        steps = reader.steps(rid)
        assert len(steps) == 5
        first, result = steps[1], steps[2]
        assert result.kind == "result" and result.intent == first.seq and first.seq > 0
        assert [s.seq for s in j.open_intents(rid)] == [steps[-1].seq]
        j.record_result(rid, late, ok=False)  # the seq it returned still names its intent
        assert j.open_intents(rid) == []
        with j.batch():
            j.record_event(rid, Started(3))
            assert j.replay(rid)[-1] == Started(3)  # its own reads see what it holds
    finally:
        j.close()


def test_a_kill_loses_only_what_was_held_since_the_last_commit(
    backend: Backend, reader: AnyJournal
) -> None:
    """The journal on disk is always a prefix of what was recorded: a process that dies
    with records held leaves every committed one and none of the held ones. `take_fence`
    is never held either; around it, nothing recorded is lost or doubled."""
    j, _ = _writer(backend, FakeClock().now)
    plan = _plan()
    with j.batch():
        rid = j.begin_rollout(plan, {}, HOLDER)
        j.record_event(rid, Started(2))
        assert j.commit() == 1
        j.record_event(rid, Started(10))
        assert j.take_fence("acme", 0) == 1
        assert reader.take_fence("acme", 0) == 2  # the fence is durable at once
        if backend.name == "sqlite":
            assert j.held == 1  # the fence's transaction leaves the batch's records held
        else:
            assert j.held == 0  # the fence committed the batch's transaction with it
        assert len(reader.steps(rid)) + j.held == 2
        on_disk = reader.replay(rid)
        j.record_event(rid, BoxApplied(plan.agents[0]))
        _kill(j)
    assert reader.replay(rid) == on_disk
    after = backend.journal()  # a resume, after the kill
    try:
        assert after.replay(rid) == on_disk
        assert after.open_intents(rid) == []
    finally:
        after.close()


def test_finish_writes_the_held_records_with_the_outcome(
    backend: Backend, reader: AnyJournal
) -> None:
    """`finish` in a batch: the held records and the outcome in one transaction, so a
    finished rollout never lacks its last records; more records are then refused."""
    j, commits = _writer(backend, FakeClock().now)
    try:
        rid = j.begin_rollout(_plan(), {}, HOLDER)
        before = commits()
        with j.batch():
            j.record_event(rid, Started(2))
            j.record_intent(rid, None, Preflight())
            j.finish(rid, Outcome.DONE, {"revision": "rev-2"})
            assert commits() - before == 1
            assert len(reader.steps(rid)) == 2 and reader.rollout(rid).outcome is Outcome.DONE
            assert j.held == 0
            with pytest.raises(JournalError, match="already finished"):
                j.record_event(rid, BoxApplied("agent-00"))  # PostgreSQL refuses it here
                j.commit()  # SQLite at the commit
            if isinstance(j, SqliteJournal):
                j._held = []  # drop the refused record, or leaving the batch raises again
        assert len(reader.steps(rid)) == 2
    finally:
        j.close()


async def test_a_rollout_commits_at_its_boundaries_not_per_record(
    backend: Backend, reader: AnyJournal
) -> None:
    """A 6-box, 3-wave rollout through the driver: at each box's lease take its
    `apply.lease` intent is already on disk; at every write of a wave-k box the gates of
    the waves before it are on disk; and the whole run commits far fewer times than it
    records (one commit per record before)."""
    fleet = make_fleet(6, waves=(1, 2, "100%"), soak_s=1.0)
    wave_of = {a: i for i, w in enumerate(fleet.plan.waves) for a in w.agents}
    seen: list[tuple[str, str, bool, int]] = []  # (agent, op, lease intent on disk, gates)

    def on_disk(agent: str) -> tuple[bool, int]:
        steps = _on_disk(reader)
        lease = any(
            s.kind == "intent" and s.agent == agent and '"apply.lease"' in _text(s) for s in steps
        )
        gates = sum(1 for s in steps if s.kind == "event" and '"GatesPassed"' in _text(s))
        return lease, gates

    def watch(agent: str) -> Fault:
        def fault(op: str, target: OpTarget) -> Exception | None:
            if op in WRITES:
                seen.append((agent, op, *on_disk(agent)))
            return None

        return fault

    for name, box in fleet.boxes.items():
        box.fault = watch(name)
    journal, commits = _writer(backend, fleet.clock.now)
    try:
        result = await fleet.run(journal=journal, parallel=2)
        assert result.outcome is Outcome.DONE
        assert {a for a, *_ in seen} == set(fleet.boxes)
        for agent, op, lease, gates in seen:
            assert lease, f"{agent}: {op} before its apply.lease intent was on disk"
            assert gates >= wave_of[agent], f"{agent} (wave {wave_of[agent] + 1}): {op} before "
        records = len(reader.steps(result.rollout_id))
        assert records >= 6 * 18
        n = commits()
        assert n * 5 <= records, (n, records)
    finally:
        journal.close()


def _stalled(box: FakeBox) -> Health:
    """A stuck agent: a queue, and no task processed, ever (the watchdog's STALLED)."""
    return Health(alive=True, heartbeat_age_s=0.5, loaded_sha256=box.loaded_sha,
                  tasks_processed=7, queue_depth=5, uptime_s=3600.0)  # fmt: skip


async def test_a_verdict_is_on_disk_before_the_rollback_touches_a_box(
    backend: Backend, reader: AnyJournal
) -> None:
    """A wave-2 box stalls: its gates fail (a verdict), and every box write made once the
    machine is rolling back (marking the revision blocked, then restoring) comes after the
    failed gates are on disk, so a resume keeps rolling back and blocks the revision."""
    fleet = make_fleet(3, waves=(1, "100%"), soak_s=10)
    fleet.boxes[fleet.wave(1)[0]].health = _stalled
    journal, _ = _writer(backend, fleet.clock.now)
    driver = fleet.driver(journal=journal)
    back: list[tuple[str, str, bool]] = []  # writes while rolling back: (agent, op, on disk)

    def watch(agent: str) -> Fault:
        def fault(op: str, target: OpTarget) -> Exception | None:
            if op in WRITES and driver.state.phase is Phase.ROLLING_BACK:
                failed = any('"GatesFailed"' in _text(s) for s in _on_disk(reader))
                back.append((agent, op, failed))
            return None

        return fault

    for name, box in fleet.boxes.items():
        box.fault = watch(name)
    try:
        result = await driver.run()
    finally:
        journal.close()

    assert result.outcome is Outcome.ROLLED_BACK
    assert {a for a, _op, _ok in back} == set(fleet.boxes)  # marked, restored: every box
    assert all(ok for _a, _op, ok in back), back
