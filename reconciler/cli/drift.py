"""`reconcile drift-issue`: one GitHub issue tracks the scheduled drift check (app/drift.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import err


def drift_issue(
    exit_code_from: Annotated[
        int,
        typer.Option("--exit-code-from", help="The exit code of `reconcile diff --exit-code`."),
    ],
    body_file: Annotated[
        Path | None,
        typer.Option("--body-file", help="The issue body (the diff's report).", dir_okay=False),
    ] = None,
    error_file: Annotated[
        Path | None,
        typer.Option(
            "--error-file",
            help="What the diff printed on stderr: its last lines go into the issue when "
            "the diff exited 1 (the unreadable boxes, or why it could not compare).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Open, update or close the drift issue from the drift check's exit code.

    2 (drift): open the issue, or update the open one, with the body. 1 with a report
    (some boxes could not be read): the same, saying the check is incomplete. 1 with an
    empty report (diff stopped first: a config error, a secret backend, credentials):
    the issue says the check failed, with the end of --error-file. 0 (no drift): close
    it with a comment. The issue is found among open issues labelled reconciler-drift
    by its hidden marker <!-- reconciler:drift -->. Reads GITHUB_REPOSITORY,
    GITHUB_API_URL and GITHUB_TOKEN (needs issues: write). Exit 0 done, 1 error.

    \b
    Example:  reconcile diff --exit-code --format markdown > drift.md 2> drift.err; rc=$?
              reconcile drift-issue --exit-code-from $rc --body-file drift.md --error-file drift.err
    """
    from reconciler.app.drift import DriftRequest
    from reconciler.app.drift import drift_issue as run

    done = run(DriftRequest(exit_code_from, body_file, error_file=error_file), os.environ)
    if done.action == "nothing":
        err.print("no drift and no open drift issue: nothing to do", markup=False)
        return
    where = f" {done.url}" if done.url else ""
    err.print(f"{done.action} drift issue #{done.number}{where}", markup=False)
