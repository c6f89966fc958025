"""`reconcile history`: past rollouts as rows, from the journal or, when it is gone, the stamps.

From the journal every figure the driver measured is there: outcome, revision,
duration, waves reached, time to detect and to roll back, and for a revert the
time from its commit to the fleet restored. From the boxes' stamps (a fresh CI
runner) less is known, and the rows say so: per rollout id, the revision, how
many boxes were applied and rolled back, the first and last stamp time (the
duration, to the second), and the span of the restores' stamps. The stamps do not
hold the moment the rollback began, so their rows leave the time to roll back
unknown: it used to be taken from the last box applied, which counts the soak and
the gates (8 s against the journal's 0.9 s for a gate-failed canary). Pure:
records and stamps in, rows out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from reconciler.model.box import Stamp
from reconciler.plan.model import Plan
from reconciler.render.stamp import rfc3339


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One past (or running) rollout."""

    rollout_id: str
    revision: str | None
    outcome: str  # done | rolled-back | rollback-failed | aborted | unfinished | applied
    started_at: str | None
    duration_s: float | None
    waves_reached: int | None
    waves_total: int | None
    time_to_detect_s: float | None
    time_to_roll_back_s: float | None
    time_from_commit_s: float | None
    boxes: int | None
    resumed: bool
    source: str  # journal | stamps
    restore_span_s: float | None = None  # stamps: first to last box restored, to the second


def _num(summary: Mapping[str, object], key: str) -> float | None:
    value = summary.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(summary: Mapping[str, object], key: str) -> int | None:
    value = _num(summary, key)
    return None if value is None else int(value)


class Journaled(Protocol):
    """What a history row needs of a journaled rollout (the journal's RolloutRecord)."""

    @property
    def rollout_id(self) -> str: ...
    @property
    def target_revision(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> object | None: ...
    @property
    def summary(self) -> Mapping[str, object] | None: ...
    @property
    def plan(self) -> Plan: ...


def waves_begun(bodies: Iterable[Mapping[str, object]]) -> int:
    """How many waves a rollout's journal records show begun: one more than the highest
    wave any journaled command names (a box applied, a watch, a soak, gates); 0: none."""
    highest = -1
    for body in bodies:
        command = body.get("command")
        wave = command.get("wave") if isinstance(command, Mapping) else None
        if isinstance(wave, int) and not isinstance(wave, bool):
            highest = max(highest, wave)
    return highest + 1


def rows_from_journal(
    records: Iterable[Journaled], begun: Mapping[str, int] | None = None
) -> list[HistoryRow]:
    """One row per journaled rollout, newest first as given.

    `begun`: waves begun per rollout id, from its journal records (`waves_begun`), for the
    rollouts whose summary does not count them: one cut short (no summary yet) or settled
    by a resume (the summary is the resume's, which began no wave). A resumed rollout's
    duration runs from its start to its settling, not the resume's own seconds.
    """
    rows = []
    for r in records:
        s: Mapping[str, object] = r.summary or {}
        resumed = s.get("resumed") is True
        duration = None if resumed else _num(s, "duration_s")
        if duration is None and r.finished_at is not None:
            duration = round((r.finished_at - r.started_at).total_seconds(), 3)
        reached = _int(s, "waves_reached")
        if begun is not None and r.rollout_id in begun:
            reached = max(reached or 0, begun[r.rollout_id])
        rows.append(
            HistoryRow(
                rollout_id=r.rollout_id,
                revision=r.target_revision,
                outcome=str(r.outcome) if r.outcome is not None else "unfinished",
                started_at=rfc3339(r.started_at),
                duration_s=duration,
                waves_reached=reached,
                waves_total=_int(s, "waves_total") or len(r.plan.waves),
                time_to_detect_s=_num(s, "time_to_detect_s"),
                time_to_roll_back_s=_num(s, "time_to_roll_back_s"),
                time_from_commit_s=_num(s, "time_from_commit_s"),
                boxes=_int(s, "boxes") or len(r.plan.boxes),
                resumed=resumed,
                source="journal",
            )
        )
    return rows


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def rows_from_stamps(stamps: Mapping[str, Stamp]) -> list[HistoryRow]:
    """One row per rollout id found in the boxes' stamp histories, newest first."""
    seen: dict[str, dict[str, list[tuple[datetime, str, str]]]] = {}
    for agent, stamp in stamps.items():
        for e in stamp.history:
            key = (agent, e.outcome)
            entry = seen.setdefault(e.rollout_id, {})
            entry.setdefault(e.outcome, []).append((_when(e.applied_at), e.revision, key[0]))
    rows = []
    for rid, by in seen.items():
        applied, rolled = by.get("applied", []), by.get("rolled-back", [])
        times = [t for t, _, _ in applied + rolled]
        boxes = {a for _, _, a in applied + rolled}
        revision = max(applied)[1] if applied else None
        span = None
        if rolled:
            span = (max(t for t, _, _ in rolled) - min(t for t, _, _ in rolled)).total_seconds()
        rows.append(
            HistoryRow(
                rollout_id=rid,
                revision=revision,
                outcome="rolled-back" if rolled else "applied",
                started_at=rfc3339(min(times)),
                duration_s=(max(times) - min(times)).total_seconds(),
                waves_reached=None,
                waves_total=None,
                time_to_detect_s=None,
                time_to_roll_back_s=None,  # when the rollback began is not on the boxes
                time_from_commit_s=None,
                boxes=len(boxes),
                resumed=False,
                source="stamps",
                restore_span_s=span,
            )
        )
    return sorted(rows, key=lambda r: (r.started_at or "", r.rollout_id), reverse=True)


class HistoryReport(BaseModel):
    """`reconcile history --format json` (schemas/history.schema.json): newest first."""

    history_version: Literal[1] = 1
    rollouts: list[HistoryRow]


def to_json(rows: Sequence[HistoryRow]) -> str:
    """The rows as a JSON document (schemas/history.schema.json)."""
    return json.dumps({"history_version": 1, "rollouts": [asdict(r) for r in rows]}, indent=2)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def to_text(rows: Sequence[HistoryRow]) -> str:
    """One line per rollout: id, revision, outcome, duration, waves, detect, roll back.

    Identifiers print whole: the rollout id and the revision (a `+dirty-<hash>` one keeps
    its suffix, so it never looks like the clean commit); the columns widen to fit them.
    """
    if not rows:
        return "no rollouts recorded\n"
    outcomes = [r.outcome + (" (resumed)" if r.resumed else "") for r in rows]
    wid = max(len("rollout"), *(len(r.rollout_id) for r in rows))
    wrev = max(len("revision"), *(len(r.revision or "-") for r in rows))
    wout = max(len("outcome"), *(len(o) for o in outcomes))
    head = (
        f"{'rollout':{wid}} {'revision':{wrev}} {'outcome':{wout}} {'duration':>9} {'waves':>6} "
        f"{'detect':>8} {'rollback':>9} {'revert':>8}  source"
    )
    lines = [head]
    for r, outcome in zip(rows, outcomes, strict=True):
        waves = "-" if r.waves_total is None else f"{r.waves_reached or 0}/{r.waves_total}"
        lines.append(
            f"{r.rollout_id:{wid}} {r.revision or '-':{wrev}} {outcome:{wout}} "
            f"{_fmt(r.duration_s):>9} {waves:>6} {_fmt(r.time_to_detect_s):>8} "
            f"{_fmt(r.time_to_roll_back_s):>9} {_fmt(r.time_from_commit_s):>8}  {r.source}"
        )
    return "\n".join(lines) + "\n"
