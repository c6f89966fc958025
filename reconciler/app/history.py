"""History: past rollouts from the journal, or from the boxes' stamps when it knows none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.app.state import open_state
from reconciler.engine.resume import read_boxes
from reconciler.engine.session import Link, Request, Source, read_source
from reconciler.model.box import Stamp
from reconciler.report.history import HistoryRow, rows_from_journal, rows_from_stamps, waves_begun


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Which fleet, where its journal is, how many rollouts, and whether to skip the journal."""

    repo: Path
    state_dir: Path | None = None
    limit: int = 50
    from_boxes: bool = False


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """The rows, newest first; `fell_back`: the journal had none, so the boxes were read."""

    rows: list[HistoryRow]
    fell_back: bool = False
    unread: dict[str, str] = field(default_factory=dict)  # agent -> why its box was not read


async def _stamps(source: Source, repo: Path) -> tuple[dict[str, Stamp], dict[str, str]]:
    link = Link(source, repo)
    try:
        handles = {a: link.box(ea.agent) for a, ea in source.repo.agents.items()}
        seen = await read_boxes(handles, source.repo.fleet.connection.concurrency)
    finally:
        await link.close()
    unread = {b.agent: b.error for b in seen.values() if b.error is not None}
    return {a: b.stamp for a, b in seen.items() if b.stamp is not None}, unread


async def history(req: HistoryRequest) -> HistoryResult:
    """The fleet's past rollouts (see the module docstring)."""
    source = read_source(Request(repo=req.repo, allow_dirty=True))
    fleet = source.repo.fleet
    rows: list[HistoryRow] = []
    if not req.from_boxes:
        with open_state(fleet, req.state_dir) as state:
            journal = state.existing_journal()
            if journal is not None:
                records = journal.history(fleet.fleet_id, limit=req.limit)
                begun = {
                    r.rollout_id: waves_begun(x.body for x in journal.steps(r.rollout_id))
                    for r in records
                    if r.outcome is None or (r.summary or {}).get("resumed") is True
                }
                rows = rows_from_journal(records, begun)
    if rows:
        return HistoryResult(rows)
    stamps, unread = await _stamps(source, req.repo)
    return HistoryResult(rows_from_stamps(stamps)[: req.limit], not req.from_boxes, unread)
