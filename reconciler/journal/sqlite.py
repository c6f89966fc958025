"""The embedded journal: rollouts and their steps in the SQLite state file (see db.py).

Outside a batch every record is one autocommitted INSERT, on disk (WAL,
synchronous=FULL: one fsync of the WAL) when the call returns. Inside `batch()`
(the rollout driver runs in one) step records are held in memory and written by
`commit()` in one transaction, one fsync for all of them; a record's seq is then a
provisional negative number until its commit (a result may name a held intent by
it). `begin_rollout`, `finish` (which writes the held records in its own
transaction) and `take_fence` are never held. A read (`steps`, `events`,
`replay`, `open_intents`) commits what is held first.

Durability boundaries (the caller's duty, engine/driver.py): a process killed
between two commits loses the records held since the last one, never a part of
one commit and never an earlier record, so the journal always holds a prefix of
what was recorded. The driver commits:

- before a box's first write of a step that a resume must attribute (the lease
  take of `apply.lease` and `restore.lease`: its intent names the box whose lease
  dir may be left torn), by one group commit that the boxes reaching that step in
  the same turn of the event loop share;
- whenever the machine's phase or wave changes: before a wave is declared done
  (its `GatesPassed`, which `settle` keeps by), before a rollback starts
  (the verdict or the interruption, before any box is marked or restored), and
  before the next wave's first write;
- at the end of the run (`finish`, then leaving the batch).

The records a resume does not need to settle (a box's later step intents and
results, watch and soak events) may be lost to a kill: the boxes' leases and
stamps tell what was done (resume reads the boxes; the journal only helps).

Bodies are canonical JSON of plain data only: events and commands go through
`to_record`, which refuses secret holders; free-form `data` and summaries are
checked the same way.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from reconciler.journal.base import (
    Holder,
    JournalError,
    RolloutRecord,
    StepRecord,
    UnknownRollout,
)
from reconciler.journal.db import Now, connect, transaction, utc_now
from reconciler.plan.model import Plan
from reconciler.rollout.commands import Command
from reconciler.rollout.events import Event
from reconciler.rollout.phases import Outcome
from reconciler.rollout.records import (
    JSONObject,
    check_plain,
    dumps,
    event_from_record,
    to_record,
)
from reconciler.secrets.redact import scrub

_ROLLOUT_COLUMNS = (
    "rollout_id, fleet_id, plan_id, target_revision, holder, started_at, plan, pre_shas,"
    " finished_at, outcome, summary"
)


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def new_rollout_id(when: datetime) -> str:
    """`r-20260101T000000Z-1a2b3c4d`: sortable by start time, unique by its random tail."""
    return f"r-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class _Held:
    """A step record held back in a batch, ready to INSERT (its body already scrubbed)."""

    handle: int  # the provisional (negative) seq handed out for it
    rollout_id: str
    kind: str
    agent: str | None
    intent: int | None  # a real seq, or the handle of a held intent
    body: str
    at: float


_INSERT_STEP = (
    "INSERT INTO steps (rollout_id, kind, agent, intent, body, at)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS"
    " (SELECT 1 FROM rollouts WHERE rollout_id = ? AND outcome IS NULL)"
)


def _holder_json(holder: Holder) -> str:
    return dumps(
        {"user": holder.user, "host": holder.host, "pid": holder.pid, "rollout": holder.rollout_id,
         "machine_id": holder.machine_id, "boot_id": holder.boot_id,
         "start_time": holder.start_time}
    )  # fmt: skip


def _holder(text: str) -> Holder:
    doc = json.loads(text)
    return Holder(
        user=doc["user"], host=doc["host"], pid=doc["pid"], rollout_id=doc["rollout"],
        machine_id=doc.get("machine_id"), boot_id=doc.get("boot_id"),
        start_time=doc.get("start_time"),
    )  # fmt: skip


class SqliteJournal:
    """The `Journal` over the SQLite state file.

    Args:
        state_dir: where the state file lives (default `~/.local/state/reconciler`).
        now: the clock for record times (tests pass a FakeClock's `now`).
        conn: an open connection to share with a `SqliteLock` (instead of `state_dir`).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        now: Now = utc_now,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self._conn = conn or connect(state_dir)
        self._now = now
        self._held: list[_Held] | None = None  # None: not in a batch, every record commits
        self._held_by: dict[int, _Held] = {}
        self._seqs: dict[int, int] = {}  # a committed record's provisional seq -> its seq
        self._handles = 0

    # -- batches ------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold step records in memory until `commit()`; leaving commits what is held.

        Nested batches are one batch (the outermost's exit commits).
        """
        if self._held is not None:
            yield
            return
        self._held = []
        try:
            yield
        finally:
            try:
                self.commit()
            finally:
                self._held = None

    @property
    def held(self) -> int:
        """How many records are held, not yet on disk (0 outside a batch)."""
        return len(self._held or ())

    def commit(self) -> int:
        """Write the held records in one transaction (one fsync); how many were written.

        Raises:
            JournalError: a held record's rollout is unknown or already finished (then
                nothing is written and the records stay held).
        """
        if not self._held:
            return 0
        with transaction(self._conn):
            seqs = self._write_held()
        return self._committed(seqs)

    def _write_held(self) -> dict[int, int]:
        """INSERT every held record (inside the caller's transaction); handle -> seq."""
        seqs: dict[int, int] = {}
        for h in self._held or ():
            intent = h.intent
            if intent is not None and intent < 0:
                intent = seqs.get(intent, self._seqs.get(intent))
            cur = self._conn.execute(
                _INSERT_STEP, (h.rollout_id, h.kind, h.agent, intent, h.body, h.at, h.rollout_id)
            )
            if cur.rowcount != 1 or cur.lastrowid is None:
                self._finished_error(h.rollout_id)
            seqs[h.handle] = cur.lastrowid
        return seqs

    def _committed(self, seqs: dict[int, int]) -> int:
        self._seqs.update(seqs)
        if self._held:
            self._held.clear()
        self._held_by.clear()
        return len(seqs)

    def _finished_error(self, rollout_id: str) -> NoReturn:
        record = self.rollout(rollout_id)  # raises UnknownRollout
        raise JournalError(
            f"rollout {rollout_id} already finished ({record.outcome}); "
            "nothing more can be recorded for it"
        )

    def _seq(self, seq: int) -> int:
        """The real seq of `seq` (a provisional one once its record is committed)."""
        return self._seqs.get(seq, seq) if seq < 0 else seq

    def close(self) -> None:
        self._conn.close()

    def begin_rollout(self, plan: Plan, pre_shas: Mapping[str, str | None], holder: Holder) -> str:
        """Record a new rollout of `plan` (and each box's pre-change sha); return its id."""
        unknown = sorted(set(pre_shas) - set(plan.agents))
        if unknown:
            raise JournalError(f"pre-change shas given for agents not in the plan: {unknown[:5]}")
        when = self._now()
        rollout_id = new_rollout_id(when)
        shas = {agent: pre_shas.get(agent, plan.box(agent).pre_sha) for agent in plan.agents}
        self._conn.execute(
            "INSERT INTO rollouts (rollout_id, fleet_id, plan_id, target_revision, plan,"
            " pre_shas, holder, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rollout_id,
                plan.fleet_id,
                plan.plan_id,
                plan.target_revision,
                plan.model_dump_json(),
                dumps(dict(shas)),
                _holder_json(holder),
                when.timestamp(),
            ),
        )
        return rollout_id

    def _insert(
        self,
        rollout_id: str,
        kind: str,
        agent: str | None,
        intent: int | None,
        body: JSONObject,
    ) -> int:
        text, at = scrub(dumps(body)), self._now().timestamp()
        if self._held is not None:
            self._handles -= 1
            held = _Held(self._handles, rollout_id, kind, agent, intent, text, at)
            self._held.append(held)
            self._held_by[held.handle] = held
            return held.handle
        real = None if intent is None else self._seq(intent)
        cur = self._conn.execute(
            _INSERT_STEP, (rollout_id, kind, agent, real, text, at, rollout_id)
        )
        if cur.rowcount != 1 or cur.lastrowid is None:
            self._finished_error(rollout_id)
        return cur.lastrowid

    def record_intent(
        self,
        rollout_id: str,
        agent: str | None,
        command: Command,
        data: JSONObject | None = None,
    ) -> int:
        """Record that the driver is about to run `command`; return the intent's seq."""
        check_plain(data, "intent data")
        body: JSONObject = {"command": to_record(command), "data": data or {}}
        return self._insert(rollout_id, "intent", agent, None, body)

    def record_result(
        self, rollout_id: str, intent: int, *, ok: bool, data: JSONObject | None = None
    ) -> int:
        """Record how the command of intent `intent` went; return the result's seq."""
        check_plain(data, "result data")
        held = self._held_by.get(intent)
        if held is not None and held.rollout_id == rollout_id and held.kind == "intent":
            agent = held.agent
        else:
            row = self._conn.execute(
                "SELECT agent FROM steps WHERE seq = ? AND rollout_id = ? AND kind = 'intent'",
                (self._seq(intent), rollout_id),
            ).fetchone()
            if row is None:
                raise JournalError(
                    f"rollout {rollout_id} has no intent {intent} to record a result of"
                )
            agent = row[0]
        return self._insert(rollout_id, "result", agent, intent, {"ok": ok, "data": data or {}})

    def record_event(self, rollout_id: str, event: Event) -> int:
        """Record an event fed to the machine; return its seq."""
        record = to_record(event)
        agent = record.get("agent")
        return self._insert(
            rollout_id, "event", agent if isinstance(agent, str) else None, None, record
        )

    def events(self, rollout_id: str) -> list[Event]:
        """The rollout's events in order."""
        self.commit()
        self.rollout(rollout_id)
        rows = self._conn.execute(
            "SELECT body FROM steps WHERE rollout_id = ? AND kind = 'event' ORDER BY seq",
            (rollout_id,),
        )
        return [event_from_record(json.loads(body)) for (body,) in rows]

    def replay(self, rollout_id: str) -> list[Event]:
        """The events to fold with `step`, from `Rollout.start(plan, pre_shas)`, to resume."""
        return self.events(rollout_id)

    def _steps(self, where: str, args: tuple[object, ...]) -> list[StepRecord]:
        rows = self._conn.execute(
            f"SELECT seq, rollout_id, kind, agent, intent, body, at FROM steps s WHERE {where}"  # noqa: S608
            " ORDER BY seq",
            args,
        )
        return [
            StepRecord(
                seq, rid, kind, agent, intent, json.loads(body), datetime.fromtimestamp(at, UTC)
            )
            for seq, rid, kind, agent, intent, body, at in rows
        ]

    def steps(self, rollout_id: str) -> list[StepRecord]:
        """Every record of the rollout, in order."""
        self.commit()
        self.rollout(rollout_id)
        return self._steps("rollout_id = ?", (rollout_id,))

    def open_intents(self, rollout_id: str) -> list[StepRecord]:
        """Intents with no result yet: commands a crash may have cut short."""
        self.commit()
        self.rollout(rollout_id)
        return self._steps(
            "rollout_id = ? AND kind = 'intent' AND NOT EXISTS"
            " (SELECT 1 FROM steps r WHERE r.intent = s.seq AND r.kind = 'result')",
            (rollout_id,),
        )

    def _record(self, row: tuple[object, ...]) -> RolloutRecord:
        rid, fleet, plan_id, rev, holder, started, plan, shas, finished, outcome, summary = row
        assert isinstance(started, float)  # noqa: S101 - the schema says REAL NOT NULL
        return RolloutRecord(
            rollout_id=str(rid),
            fleet_id=str(fleet),
            plan_id=str(plan_id),
            target_revision=str(rev),
            holder=_holder(str(holder)),
            started_at=datetime.fromtimestamp(started, UTC),
            plan_text=str(plan),
            pre_shas=json.loads(str(shas)),
            finished_at=_time(finished if isinstance(finished, float) else None),
            outcome=Outcome(str(outcome)) if outcome is not None else None,
            summary=json.loads(str(summary)) if summary is not None else None,
        )

    def rollout(self, rollout_id: str) -> RolloutRecord:
        """One rollout's record; UnknownRollout when there is none."""
        row = self._conn.execute(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE rollout_id = ?",  # noqa: S608
            (rollout_id,),
        ).fetchone()
        if row is None:
            raise UnknownRollout(
                f"no rollout {rollout_id} in the journal; `reconcile history` lists them"
            )
        return self._record(row)

    def _rollouts(self, where: str, args: tuple[object, ...], order: str) -> list[RolloutRecord]:
        rows = self._conn.execute(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE {where} ORDER BY {order}",  # noqa: S608
            args,
        )
        return [self._record(row) for row in rows]

    def unfinished(self, fleet_id: str | None = None) -> list[RolloutRecord]:
        """Rollouts begun and never finished (oldest first): candidates to resume."""
        if fleet_id is None:
            return self._rollouts("outcome IS NULL", (), "started_at, rollout_id")
        return self._rollouts(
            "outcome IS NULL AND fleet_id = ?", (fleet_id,), "started_at, rollout_id"
        )

    def finish(self, rollout_id: str, outcome: Outcome, summary: JSONObject) -> None:
        """Close a rollout with its outcome and a summary (names and figures only); the
        records held in a batch are written first, in the same transaction."""
        text = scrub(dumps(summary))
        with transaction(self._conn):
            seqs = self._write_held()
            cur = self._conn.execute(
                "UPDATE rollouts SET outcome = ?, finished_at = ?, summary = ?"
                " WHERE rollout_id = ? AND outcome IS NULL",
                (str(Outcome(outcome)), self._now().timestamp(), text, rollout_id),
            )
            if cur.rowcount != 1:
                record = self.rollout(rollout_id)
                raise JournalError(f"rollout {rollout_id} already finished ({record.outcome})")
        if seqs:
            self._committed(seqs)

    def history(self, fleet_id: str | None = None, limit: int = 50) -> list[RolloutRecord]:
        """Past and running rollouts, newest first."""
        order = f"started_at DESC, rollout_id DESC LIMIT {int(limit)}"
        if fleet_id is None:
            return self._rollouts("1 = 1", (), order)
        return self._rollouts("fleet_id = ?", (fleet_id,), order)

    def take_fence(self, fleet_id: str, floor: int) -> int:
        """A new fencing number for the fleet: the counter becomes max(counter, `floor`) + 1,
        in one write transaction (two runs never get the same number), and is returned."""
        with transaction(self._conn):
            row = self._conn.execute(
                "SELECT counter FROM fences WHERE fleet_id = ?", (fleet_id,)
            ).fetchone()
            fence = max(int(row[0]) if row is not None else 0, floor) + 1
            self._conn.execute(
                "INSERT INTO fences (fleet_id, counter) VALUES (?, ?)"
                " ON CONFLICT (fleet_id) DO UPDATE SET counter = excluded.counter",
                (fleet_id, fence),
            )
        return fence
