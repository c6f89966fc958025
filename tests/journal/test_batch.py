"""The journal's batches: records held in memory, written by one commit, and where the driver
commits them (the durability boundaries of journal/sqlite.py).

A second connection to the state file stands for a resume after a kill: it sees what was
committed and nothing that was only held.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.journal import JournalError, SqliteJournal
from reconciler.journal.base import Holder
from reconciler.journal.db import FILE_NAME, connect
from reconciler.model.box import Health
from reconciler.plan.model import Plan
from reconciler.rollout.commands import Preflight
from reconciler.rollout.events import BoxApplied, Started
from reconciler.rollout.phases import Outcome, Phase
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox, Fault, OpTarget
from tests.engine.helpers import make_fleet

HOLDER = Holder(user="tester", host="localhost", pid=1)
WRITES = frozenset({"mkdir", "write_atomic", "rename", "link", "remove", "rmdir", "rmtree", "run"})


def _plan() -> Plan:
    return make_fleet(2).plan


def _reader(state: Path) -> sqlite3.Connection:
    """What a resume would find on disk: a connection of its own."""
    return sqlite3.connect(state / FILE_NAME, isolation_level=None)


def _count(reader: sqlite3.Connection) -> int:
    return int(reader.execute("SELECT count(*) FROM steps").fetchone()[0])


def _commits(conn: sqlite3.Connection) -> list[str]:
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
    return seen


def test_held_records_reach_the_disk_in_one_commit(tmp_path: Path) -> None:
    """In a batch nothing is on disk until `commit()`, which writes every held record in
    one transaction; a result names its intent by the provisional seq, and the link holds."""
    conn = connect(tmp_path)
    commits = _commits(conn)
    j = SqliteJournal(conn=conn, now=FakeClock().now)
    plan = _plan()
    agent = plan.agents[0]
    rid = j.begin_rollout(plan, {}, HOLDER)
    reader = _reader(tmp_path)
    begun = len(commits)
    with j.batch():
        j.record_event(rid, Started(2))
        intent = j.record_intent(rid, agent, Preflight(), {"boundary": "x"})
        assert intent < 0  # provisional until committed
        j.record_result(rid, intent, ok=True)
        j.record_event(rid, BoxApplied(agent))
        assert j.held == 4
        assert _count(reader) == 0
        assert j.commit() == 4
        assert j.held == 0
        assert _count(reader) == 4
        late = j.record_intent(rid, agent, Preflight())
        assert _count(reader) == 4
    # leaving the batch committed the last one; two commits in all, whatever the records
    assert len(commits) - begun == 2
    assert _count(reader) == 5
    steps = j.steps(rid)
    first, result = steps[1], steps[2]
    assert result.kind == "result" and result.intent == first.seq and first.seq > 0
    assert [s.seq for s in j.open_intents(rid)] == [steps[-1].seq]
    j.record_result(rid, late, ok=False)  # a provisional seq still names its committed intent
    assert j.open_intents(rid) == []


def test_a_kill_loses_only_what_was_held_since_the_last_commit(tmp_path: Path) -> None:
    """The journal on disk is always a prefix of what was recorded: a process that dies
    with records held leaves every committed one and none of the held ones."""
    j = SqliteJournal(tmp_path, now=FakeClock().now)
    plan = _plan()
    rid = j.begin_rollout(plan, {}, HOLDER)
    with j.batch():
        j.record_event(rid, Started(2))
        j.commit()
        j.record_event(rid, BoxApplied(plan.agents[0]))
        # the process is killed here: a fresh journal on the same file is what resume reads
        after = SqliteJournal(tmp_path)
        assert [type(e).__name__ for e in after.replay(rid)] == ["Started"]
        after.close()
        j._held = None  # the kill: the held record never reaches the disk
    assert [type(e).__name__ for e in SqliteJournal(tmp_path).replay(rid)] == ["Started"]


def test_finish_writes_the_held_records_with_the_outcome(tmp_path: Path) -> None:
    """`finish` in a batch: the held records and the outcome in one transaction, so a
    finished rollout never lacks its last records; more records are then refused."""
    conn = connect(tmp_path)
    commits = _commits(conn)
    j = SqliteJournal(conn=conn, now=FakeClock().now)
    rid = j.begin_rollout(_plan(), {}, HOLDER)
    with j.batch():
        j.record_event(rid, Started(2))
        j.record_intent(rid, None, Preflight())
        before = len(commits)
        j.finish(rid, Outcome.DONE, {"revision": "rev-2"})
        assert len(commits) - before == 1
        assert len(j.steps(rid)) == 2 and j.rollout(rid).outcome is Outcome.DONE
        j.record_event(rid, BoxApplied("agent-00"))
        with pytest.raises(JournalError, match="already finished"):
            j.commit()
        j._held = []  # drop the refused record, or leaving the batch raises again


async def test_a_rollout_commits_at_its_boundaries_not_per_record(tmp_path: Path) -> None:
    """A 6-box, 3-wave rollout through the driver: at each box's lease take its
    `apply.lease` intent is already on disk; at every write of a wave-k box the gates of
    the waves before it are on disk; and the whole run commits far fewer times than it
    records (one commit per record before)."""
    fleet = make_fleet(6, waves=(1, 2, "100%"), soak_s=1.0)
    reader = _reader(tmp_path)
    wave_of = {a: i for i, w in enumerate(fleet.plan.waves) for a in w.agents}
    seen: list[tuple[str, str, bool, int]] = []  # (agent, op, lease intent on disk, gates)

    def on_disk(agent: str) -> tuple[bool, int]:
        rows = reader.execute("SELECT kind, agent, body FROM steps").fetchall()
        lease = any(k == "intent" and a == agent and '"apply.lease"' in b for k, a, b in rows)
        gates = sum(1 for k, _a, b in rows if k == "event" and '"GatesPassed"' in b)
        return lease, gates

    def watch(agent: str) -> Fault:
        def fault(op: str, target: OpTarget) -> Exception | None:
            if op in WRITES:
                seen.append((agent, op, *on_disk(agent)))
            return None

        return fault

    for name, box in fleet.boxes.items():
        box.fault = watch(name)
    conn = connect(tmp_path)
    commits = _commits(conn)
    journal = SqliteJournal(conn=conn, now=fleet.clock.now)
    result = await fleet.run(journal=journal, parallel=2)

    assert result.outcome is Outcome.DONE
    assert {a for a, *_ in seen} == set(fleet.boxes)
    for agent, op, lease, gates in seen:
        assert lease, f"{agent}: {op} before its apply.lease intent was on disk"
        assert gates >= wave_of[agent], f"{agent} (wave {wave_of[agent] + 1}): {op} before "
    records = len(journal.steps(result.rollout_id))
    assert records >= 6 * 18
    assert len(commits) * 5 <= records, (len(commits), records)


def _stalled(box: FakeBox) -> Health:
    """A stuck agent: a queue, and no task processed, ever (the watchdog's STALLED)."""
    return Health(alive=True, heartbeat_age_s=0.5, loaded_sha256=box.loaded_sha,
                  tasks_processed=7, queue_depth=5, uptime_s=3600.0)  # fmt: skip


async def test_a_verdict_is_on_disk_before_the_rollback_touches_a_box(tmp_path: Path) -> None:
    """A wave-2 box stalls: its gates fail (a verdict), and every box write made once the
    machine is rolling back (marking the revision blocked, then restoring) comes after the
    failed gates are on disk, so a resume keeps rolling back and blocks the revision."""
    fleet = make_fleet(3, waves=(1, "100%"), soak_s=10)
    fleet.boxes[fleet.wave(1)[0]].health = _stalled
    reader = _reader(tmp_path)
    journal = SqliteJournal(tmp_path, now=fleet.clock.now)
    driver = fleet.driver(journal=journal)
    back: list[tuple[str, str, bool]] = []  # writes while rolling back: (agent, op, on disk)

    def watch(agent: str) -> Fault:
        def fault(op: str, target: OpTarget) -> Exception | None:
            if op in WRITES and driver.state.phase is Phase.ROLLING_BACK:
                rows = reader.execute("SELECT body FROM steps WHERE kind = 'event'").fetchall()
                back.append((agent, op, any('"GatesFailed"' in b for (b,) in rows)))
            return None

        return fault

    for name, box in fleet.boxes.items():
        box.fault = watch(name)
    result = await driver.run()

    assert result.outcome is Outcome.ROLLED_BACK
    assert {a for a, _op, _ok in back} == set(fleet.boxes)  # marked, restored: every box
    assert all(ok for _a, _op, ok in back), back
