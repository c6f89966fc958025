"""The shared journal: rollouts and their steps in a PostgreSQL database (see pgdb.py).

The same tables as the embedded journal (journal/sqlite.py), so both pass one
contract suite (tests/journal). Outside a batch every record is one autocommitted
statement, committed when the call returns; the fence counter is one atomic upsert.
Inside `batch()` the step records go into one open transaction, committed by
`commit()` (the durability boundary the rollout driver places; journal/base.py) or
at the batch's end: a killed run loses the records since the last commit and
nothing before them, and their seqs are real at once (the session reads its own
uncommitted rows). `begin_rollout`, `finish` and `take_fence` commit what is held
with them. The journal's session is its own (the lock's reads and force-releases
never ride in a batch's transaction). Bodies
are canonical JSON of plain data only, as in SQLite: rendered payloads and secret
values never reach the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from reconciler.journal.base import Holder, JournalError, RolloutRecord, StepRecord, UnknownRollout
from reconciler.journal.db import Now, utc_now
from reconciler.journal.pgdb import connect
from reconciler.journal.sqlite import _holder, _holder_json, new_rollout_id
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

Row = tuple[object, ...]
_ROLLOUT_COLUMNS = (
    "rollout_id, fleet_id, plan_id, target_revision, holder, started_at, plan, pre_shas,"
    " finished_at, outcome, summary"
)


def _float(value: object) -> float:
    assert isinstance(value, float | int)  # noqa: S101 - the schema says DOUBLE PRECISION
    return float(value)


class PostgresJournal:
    """The `Journal` over a PostgreSQL database.

    Args:
        url: `postgresql://user@host:port/db` (the password from the environment or a file).
        now: the clock for record times (tests pass a FakeClock's `now`).
        conn: an open session to share with a `PostgresLock` (instead of `url`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        now: Now = utc_now,
        conn: psycopg.Connection[Row] | None = None,
    ) -> None:
        if conn is None:
            if url is None:
                raise ValueError("PostgresJournal needs a url or a conn")
            conn = connect(url)
        self._conn = conn
        self._now = now
        self._held = 0
        self._batches = 0

    def close(self) -> None:
        self._conn.close()

    # -- batches: one transaction from commit to commit ------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold step records in an open transaction until `commit()`; leaving commits them.
        Nested batches are one batch (the outermost's exit commits)."""
        if self._batches == 0:
            self._conn.autocommit = False
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1
            if self._batches == 0:
                try:
                    self.commit()
                finally:
                    self._conn.autocommit = True

    @property
    def held(self) -> int:
        """How many records are written but not committed yet (0 outside a batch)."""
        return self._held

    def commit(self) -> int:
        """Commit the held records (one transaction, one WAL flush); how many there were."""
        if self._conn.autocommit:
            return 0
        held, self._held = self._held, 0
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise JournalError(
                f"the shared journal could not commit {held} records: {exc}"
            ) from None
        return held

    def flush(self) -> None:
        """The durability boundary: commit what a batch holds (nothing outside one)."""
        self.commit()

    def _one(self, sql: str, args: tuple[object, ...]) -> Row | None:
        return self._conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

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
            " pre_shas, holder, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
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
        self.commit()  # never held
        return rollout_id

    def _insert(
        self, rollout_id: str, kind: str, agent: str | None, intent: int | None, body: JSONObject
    ) -> int:
        row = self._one(
            "INSERT INTO steps (rollout_id, kind, agent, intent, body, at)"
            " SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS"
            " (SELECT 1 FROM rollouts WHERE rollout_id = %s AND outcome IS NULL)"
            " RETURNING seq",
            (rollout_id, kind, agent, intent, scrub(dumps(body)), self._now().timestamp(),
             rollout_id),
        )  # fmt: skip
        if row is None:
            record = self.rollout(rollout_id)  # raises UnknownRollout
            raise JournalError(
                f"rollout {rollout_id} already finished ({record.outcome}); "
                "nothing more can be recorded for it"
            )
        if not self._conn.autocommit:
            self._held += 1
        return int(str(row[0]))

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
        row = self._one(
            "SELECT agent FROM steps WHERE seq = %s AND rollout_id = %s AND kind = 'intent'",
            (intent, rollout_id),
        )
        if row is None:
            raise JournalError(f"rollout {rollout_id} has no intent {intent} to record a result of")
        agent = row[0] if isinstance(row[0], str) else None
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
        self.rollout(rollout_id)
        rows = self._all(
            "SELECT body FROM steps WHERE rollout_id = %s AND kind = 'event' ORDER BY seq",
            (rollout_id,),
        )
        return [event_from_record(json.loads(str(body))) for (body,) in rows]

    def replay(self, rollout_id: str) -> list[Event]:
        """The events to fold with `step`, from `Rollout.start(plan, pre_shas)`, to resume."""
        return self.events(rollout_id)

    def _steps(self, where: str, args: tuple[object, ...]) -> list[StepRecord]:
        rows = self._all(
            f"SELECT seq, rollout_id, kind, agent, intent, body, at FROM steps s WHERE {where}"  # noqa: S608
            " ORDER BY seq",
            args,
        )
        return [
            StepRecord(
                int(str(seq)),
                str(rid),
                str(kind),
                agent if isinstance(agent, str) else None,
                int(str(intent)) if intent is not None else None,
                json.loads(str(body)),
                datetime.fromtimestamp(_float(at), UTC),
            )
            for seq, rid, kind, agent, intent, body, at in rows
        ]

    def steps(self, rollout_id: str) -> list[StepRecord]:
        """Every record of the rollout, in order."""
        self.rollout(rollout_id)
        return self._steps("rollout_id = %s", (rollout_id,))

    def open_intents(self, rollout_id: str) -> list[StepRecord]:
        """Intents with no result yet: commands a crash may have cut short."""
        self.rollout(rollout_id)
        return self._steps(
            "rollout_id = %s AND kind = 'intent' AND NOT EXISTS"
            " (SELECT 1 FROM steps r WHERE r.intent = s.seq AND r.kind = 'result')",
            (rollout_id,),
        )

    @staticmethod
    def _record(row: Row) -> RolloutRecord:
        rid, fleet, plan_id, rev, holder, started, plan, shas, finished, outcome, summary = row
        return RolloutRecord(
            rollout_id=str(rid),
            fleet_id=str(fleet),
            plan_id=str(plan_id),
            target_revision=str(rev),
            holder=_holder(str(holder)),
            started_at=datetime.fromtimestamp(_float(started), UTC),
            plan_text=str(plan),
            pre_shas=json.loads(str(shas)),
            finished_at=(
                datetime.fromtimestamp(_float(finished), UTC) if finished is not None else None
            ),
            outcome=Outcome(str(outcome)) if outcome is not None else None,
            summary=json.loads(str(summary)) if summary is not None else None,
        )

    def rollout(self, rollout_id: str) -> RolloutRecord:
        """One rollout's record; UnknownRollout when there is none."""
        row = self._one(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE rollout_id = %s",  # noqa: S608
            (rollout_id,),
        )
        if row is None:
            raise UnknownRollout(
                f"no rollout {rollout_id} in the journal; `reconcile history` lists them"
            )
        return self._record(row)

    def _rollouts(self, where: str, args: tuple[object, ...], order: str) -> list[RolloutRecord]:
        rows = self._all(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE {where} ORDER BY {order}",  # noqa: S608
            args,
        )
        return [self._record(row) for row in rows]

    def unfinished(self, fleet_id: str | None = None) -> list[RolloutRecord]:
        """Rollouts begun and never finished (oldest first): candidates to resume."""
        if fleet_id is None:
            return self._rollouts("outcome IS NULL", (), "started_at, rollout_id")
        return self._rollouts(
            "outcome IS NULL AND fleet_id = %s", (fleet_id,), "started_at, rollout_id"
        )

    def finish(self, rollout_id: str, outcome: Outcome, summary: JSONObject) -> None:
        """Close a rollout with its outcome and a summary (names and figures only)."""
        text = scrub(dumps(summary))
        cur = self._conn.execute(
            "UPDATE rollouts SET outcome = %s, finished_at = %s, summary = %s"
            " WHERE rollout_id = %s AND outcome IS NULL",
            (str(Outcome(outcome)), self._now().timestamp(), text, rollout_id),
        )
        if cur.rowcount != 1:
            record = self.rollout(rollout_id)
            raise JournalError(f"rollout {rollout_id} already finished ({record.outcome})")
        self.commit()  # never held: the held records and the outcome, in one transaction

    def history(self, fleet_id: str | None = None, limit: int = 50) -> list[RolloutRecord]:
        """Past and running rollouts, newest first."""
        order = f"started_at DESC, rollout_id DESC LIMIT {int(limit)}"
        if fleet_id is None:
            return self._rollouts("TRUE", (), order)
        return self._rollouts("fleet_id = %s", (fleet_id,), order)

    def take_fence(self, fleet_id: str, floor: int) -> int:
        """A new fencing number for the fleet: the counter becomes max(counter, `floor`) + 1
        in one atomic upsert (two runs never get the same number), and is returned."""
        row = self._one(
            "INSERT INTO fences (fleet_id, counter) VALUES (%s, %s + 1)"
            " ON CONFLICT (fleet_id) DO UPDATE"
            " SET counter = GREATEST(fences.counter, %s) + 1 RETURNING counter",
            (fleet_id, floor, floor),
        )
        assert row is not None  # noqa: S101 - RETURNING of an upsert always gives one row
        self.commit()  # never held
        return int(str(row[0]))
