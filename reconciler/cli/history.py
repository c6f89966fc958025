"""`reconcile history`: past rollouts from the journal, or from the boxes' stamps without it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Format, RepoOpt, err, fail, out
from reconciler.cli.resuming import state_dir_of
from reconciler.engine.resume import read_boxes
from reconciler.engine.session import ApplyRefused, Link, Request, read_source
from reconciler.journal.db import FILE_NAME
from reconciler.journal.sqlite import SqliteJournal
from reconciler.model.box import Stamp
from reconciler.report.history import (
    HistoryRow,
    rows_from_journal,
    rows_from_stamps,
    to_json,
    to_text,
)


async def _stamps(repo: Path) -> dict[str, Stamp]:
    source = read_source(Request(repo=repo, allow_dirty=True))
    link = Link(source, repo)
    try:
        handles = {a: link.box(ea.agent) for a, ea in source.repo.agents.items()}
        seen = await read_boxes(handles, source.repo.fleet.connection.concurrency)
    finally:
        await link.close()
    for b in seen.values():
        if b.error is not None:
            err.print(f"{b.agent}: not read: {b.error}", markup=False)
    return {a: b.stamp for a, b in seen.items() if b.stamp is not None}


def history(
    repo: RepoOpt = Path(),
    limit: Annotated[int, typer.Option("--limit", help="At most this many rollouts.")] = 50,
    from_boxes: Annotated[
        bool, typer.Option("--from-boxes", help="Read the boxes' stamps, not the journal.")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal and lock directory.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
) -> None:
    """Past rollouts: revision, outcome, duration, waves, time to detect and to roll back.

    Read from the journal; with no journal here (a fresh CI runner), from the boxes' stamps.

    Example:  reconcile history --repo demo-fleet/fleet --format json
    """
    try:
        fleet = read_source(Request(repo=repo, allow_dirty=True)).repo.fleet
    except ApplyRefused as exc:
        fail(str(exc))
    rows: list[HistoryRow] = []
    where = state_dir_of(state_dir, fleet.state_dir)
    if not from_boxes and (where / FILE_NAME).exists():
        journal = SqliteJournal(where)
        try:
            rows = rows_from_journal(journal.history(fleet.fleet_id, limit=limit))
        finally:
            journal.close()
    if not rows:
        if not from_boxes:
            err.print(
                "the journal has no rollouts of this fleet: reading the boxes' stamps", markup=False
            )
        rows = rows_from_stamps(asyncio.run(_stamps(repo)))[:limit]
    text = to_json(rows) + "\n" if fmt is Format.json else to_text(rows)
    out.print(text, end="", markup=False, highlight=False)
