"""The work queue of one rollout spread over worker processes, in the shared PostgreSQL state.

The coordinator (the `reconcile apply --workers N` process) announces its rollout in
`coordinators` (its reconciler version, the revision, the options a worker needs; a
heartbeat) and posts each box operation the machine asks for as a `box_work` row. A
worker claims the oldest queued row of a live coordinator with `SELECT … FOR UPDATE
SKIP LOCKED` (two workers never claim the same row, and never wait on each other), runs
it, renews its claim while it runs, and records the result. A claim expires when it is
not renewed (`claimed_until`, in the database's clock, so the machines' clocks need not
agree): another worker then claims the row again with a new `token`, and the first
worker's late renewal or result is refused (it must stop touching the box). Nothing
here holds a config byte or a secret value: a row names the command (the machine's
ApplyBox or RestoreBox) and its result (the event), and the worker renders the repo itself.

Every statement autocommits on this module's own session (never the journal's batch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from reconciler.journal.base import JournalError
from reconciler.journal.pgdb import connect
from reconciler.rollout.records import JSONObject

Row = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Coordinator:
    """A rollout served by workers, as its coordinator announced it."""

    rollout_id: str
    fleet_id: str
    version: str
    revision: str
    options: JSONObject
    age_s: float  # since its last heartbeat
    done: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """One box operation a worker holds: run it, renew it, finish it with `token`."""

    work_id: int
    rollout_id: str
    agent: str
    kind: str  # "apply" or "restore"
    command: JSONObject
    extra: JSONObject
    token: int
    attempts: int  # 1: first claim; more: reassigned after a claim expired


def _obj(text: object) -> JSONObject:
    value = json.loads(str(text))
    if not isinstance(value, dict):
        raise JournalError(f"a box_work row holds {type(value).__name__}, not an object")
    return value


class WorkQueue:
    """The coordinators and box_work tables on one autocommitted session."""

    def __init__(
        self, url: str | None = None, *, conn: psycopg.Connection[Row] | None = None
    ) -> None:
        if conn is None:
            if url is None:
                raise ValueError("WorkQueue needs a url or a conn")
            conn = connect(url)
        self._conn = conn

    def close(self) -> None:
        self._conn.close()

    def _run(self, sql: str, args: tuple[object, ...]) -> list[Row]:
        try:
            cur = self._conn.execute(sql, args)
            return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JournalError(f"the shared work queue failed: {first}") from None

    # -- the coordinator ----------------------------------------------------------------

    def announce(
        self, rollout_id: str, *, fleet_id: str, version: str, revision: str, options: JSONObject
    ) -> None:
        """Make the rollout visible to workers (its journal row must exist)."""
        self._run(
            "INSERT INTO coordinators (rollout_id, fleet_id, version, revision, options,"
            " heartbeat) VALUES (%s, %s, %s, %s, %s, reconciler_now())",
            (rollout_id, fleet_id, version, revision, json.dumps(options)),
        )

    def beat(self, rollout_id: str) -> None:
        """The coordinator is alive."""
        self._run("UPDATE coordinators SET heartbeat = reconciler_now() WHERE rollout_id = %s",
                  (rollout_id,))  # fmt: skip

    def retire(self, rollout_id: str) -> int:
        """The rollout is over: workers leave it; work still queued is dropped (how many)."""
        self._run("UPDATE coordinators SET done = TRUE WHERE rollout_id = %s", (rollout_id,))
        rows = self._run(
            "UPDATE box_work SET state = 'done', result = %s WHERE rollout_id = %s"
            " AND state <> 'done' RETURNING id",
            (json.dumps({"dropped": True}), rollout_id),
        )
        return len(rows)

    def coordinator(self, rollout_id: str) -> Coordinator | None:
        rows = self._run(
            "SELECT rollout_id, fleet_id, version, revision, options,"
            " reconciler_now() - heartbeat, done FROM coordinators WHERE rollout_id = %s",
            (rollout_id,),
        )
        return _coordinator(rows[0]) if rows else None

    def live(self, fleet_id: str | None, *, stale_s: float) -> list[Coordinator]:
        """Rollouts not done whose coordinator beat within `stale_s`, oldest first."""
        rows = self._run(
            "SELECT rollout_id, fleet_id, version, revision, options,"
            " reconciler_now() - heartbeat, done FROM coordinators WHERE NOT done"
            " AND heartbeat > reconciler_now() - %s AND (%s::text IS NULL OR fleet_id = %s)"
            " ORDER BY rollout_id",
            (stale_s, fleet_id, fleet_id),
        )
        return [_coordinator(r) for r in rows]

    def post(self, rollout_id: str, agent: str, kind: str, command: JSONObject,
             extra: JSONObject) -> int:  # fmt: skip
        """Queue one box operation; its work id."""
        rows = self._run(
            "INSERT INTO box_work (rollout_id, agent, kind, command, extra)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (rollout_id, agent, kind, json.dumps(command), json.dumps(extra)),
        )
        return int(str(rows[0][0]))

    def results(self, work_ids: list[int]) -> dict[int, JSONObject]:
        """The results recorded so far among `work_ids`."""
        if not work_ids:
            return {}
        rows = self._run(
            "SELECT id, result FROM box_work WHERE id = ANY(%s) AND state = 'done'",
            (work_ids,),
        )
        return {int(str(r[0])): _obj(r[1]) for r in rows}

    def claimed(self, rollout_id: str) -> list[tuple[str, str, int]]:
        """(agent, worker, attempts) of each box operation held right now."""
        rows = self._run(
            "SELECT agent, worker, attempts FROM box_work WHERE rollout_id = %s"
            " AND state = 'claimed' AND claimed_until > reconciler_now() ORDER BY id",
            (rollout_id,),
        )
        return [(str(r[0]), str(r[1]), int(str(r[2]))) for r in rows]

    # -- a worker -----------------------------------------------------------------------

    def claim(self, rollout_id: str, worker: str, *, ttl_s: float) -> Claim | None:
        """The oldest queued (or expired) box operation of `rollout_id`, now ours."""
        rows = self._run(
            "UPDATE box_work SET state = 'claimed', token = token + 1, worker = %s,"
            " claimed_until = reconciler_now() + %s, attempts = attempts + 1"
            " WHERE id = (SELECT id FROM box_work WHERE rollout_id = %s"
            " AND (state = 'queued' OR (state = 'claimed' AND claimed_until < reconciler_now()))"
            " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, rollout_id, agent, kind, command, extra, token, attempts",
            (worker, ttl_s, rollout_id),
        )
        return _claim(rows[0]) if rows else None

    def claim_id(self, work_id: int, worker: str, *, ttl_s: float) -> Claim | None:
        """Claim one given row if it is queued or its claim expired (the coordinator runs a
        box operation no worker took); None: a worker holds it or it is done."""
        rows = self._run(
            "UPDATE box_work SET state = 'claimed', token = token + 1, worker = %s,"
            " claimed_until = reconciler_now() + %s, attempts = attempts + 1"
            " WHERE id = (SELECT id FROM box_work WHERE id = %s"
            " AND (state = 'queued' OR (state = 'claimed' AND claimed_until < reconciler_now()))"
            " FOR UPDATE SKIP LOCKED)"
            " RETURNING id, rollout_id, agent, kind, command, extra, token, attempts",
            (worker, ttl_s, work_id),
        )
        return _claim(rows[0]) if rows else None

    def renew(self, claim: Claim, *, ttl_s: float) -> bool:
        """Extend the claim; False: it expired and was claimed again (stop: not ours)."""
        rows = self._run(
            "UPDATE box_work SET claimed_until = reconciler_now() + %s WHERE id = %s AND token = %s"
            " AND state = 'claimed' RETURNING id",
            (ttl_s, claim.work_id, claim.token),
        )
        return bool(rows)

    def finish(self, claim: Claim, result: JSONObject) -> bool:
        """Record the result; False: the claim was lost (another worker's result counts)."""
        rows = self._run(
            "UPDATE box_work SET state = 'done', result = %s WHERE id = %s AND token = %s"
            " AND state = 'claimed' RETURNING id",
            (json.dumps(result), claim.work_id, claim.token),
        )
        return bool(rows)


def _coordinator(r: Row) -> Coordinator:
    return Coordinator(
        rollout_id=str(r[0]), fleet_id=str(r[1]), version=str(r[2]), revision=str(r[3]),
        options=_obj(r[4]), age_s=float(str(r[5])), done=bool(r[6]),
    )  # fmt: skip


def _claim(r: Row) -> Claim:
    return Claim(
        work_id=int(str(r[0])), rollout_id=str(r[1]), agent=str(r[2]), kind=str(r[3]),
        command=_obj(r[4]), extra=_obj(r[5]), token=int(str(r[6])), attempts=int(str(r[7])),
    )  # fmt: skip
