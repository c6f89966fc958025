"""`reconcile history`: past rollouts from the journal, or from the boxes' stamps without it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import (
    Format,
    RepoOpt,
    StateDirOpt,
    StateOpt,
    format_option,
    out,
    pick_format,
)
from reconciler.cli.progress import tell

FORMATS = (Format.text, Format.json)  # markdown means nothing here: refused


def history(
    repo: RepoOpt = Path(),
    limit: Annotated[int, typer.Option("--limit", help="At most this many rollouts.")] = 50,
    from_boxes: Annotated[
        bool, typer.Option("--from-boxes", help="Read the boxes' stamps, not the journal.")
    ] = False,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    fmt: Annotated[str, format_option(*FORMATS)] = "text",
) -> None:
    """Past rollouts: revision, outcome, duration, waves, time to detect and to roll back.

    Read from the journal; with no journal here (a fresh CI runner), from the boxes' stamps,
    which know less: no waves, no time to detect or to roll back (when the rollback began
    is not on the boxes), only the span of the restores. Revisions print whole (a
    `+dirty-<hash>` one was applied from an uncommitted work tree). Formats: text, json
    (schemas/history.schema.json).

    Example:  reconcile history --repo demo-fleet/fleet --format json
    """
    import asyncio

    from reconciler.app.history import HistoryRequest
    from reconciler.app.history import history as run_history
    from reconciler.report.history import to_json, to_text

    form = pick_format(fmt, "history", *FORMATS)
    done = asyncio.run(run_history(HistoryRequest(repo, state_dir, limit, from_boxes)))
    if done.fell_back:
        tell("the journal has no rollouts of this fleet: reading the boxes' stamps")
    for agent, why in done.unread.items():
        tell(f"{agent}: not read: {why}")
    text = to_json(done.rows) + "\n" if form is Format.json else to_text(done.rows)
    out.print(text, end="", markup=False, highlight=False)
