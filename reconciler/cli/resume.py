"""`reconcile resume`: finish or roll back a rollout a crash cut short (see docs/resume.md).

Exit 0 nothing to resume, or nothing had changed; 3 rolled back cleanly; 4 some
box could not be put back (named, with what to do).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.apply import JsonReporter, TextReporter
from reconciler.cli.common import Format, RepoOpt, fail
from reconciler.cli.resuming import report, resume_first
from reconciler.rollout.phases import Outcome


def resume(
    repo: RepoOpt = Path(),
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="settle, finish or rollback (default: fleet.yaml rollout.on_resume, settle). "
            "A rollout a failed gate or watchdog had judged is always rolled back.",
        ),
    ] = None,
    break_leases: Annotated[
        bool,
        typer.Option("--break-leases", help="The rollout's lease holders are dead: break them."),
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal and lock directory.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json event lines.")] = (
        Format.text
    ),
) -> None:
    """Settle or roll back a rollout cut short by a crash or a signal (the boxes decide).

    Finds the unfinished rollout in the journal, or, with the journal lost, from the
    boxes' stamps and leases; `apply` runs the same step before it plans, then goes on
    to the head. settle: the cut-short wave is put back, passed waves are re-verified
    and kept; finish: every box consistent on the target is kept; rollback: every box
    is put back. Exit codes: 0 nothing to resume, settled or finished; 3 rolled back
    cleanly; 4 a box could not be put back.

    Example:  reconcile resume --repo demo-fleet/fleet --policy rollback
    """
    if policy not in (None, "settle", "rollback", "finish"):
        fail(f"--policy {policy}: expected settle, finish or rollback")
    reporter = JsonReporter() if fmt is Format.json else TextReporter()
    result = asyncio.run(
        resume_first(
            repo, state_dir, reporter, explicit=True, policy=policy, break_leases=break_leases
        )
    )
    report(result)
    if result is None:
        raise typer.Exit(0)
    code = result.exit_code if result.outcome is not Outcome.ABORTED else 0
    raise typer.Exit(code)
