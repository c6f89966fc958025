"""`reconcile pr comment`: the fleet diff as one sticky pull-request comment (app/prcomment.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import err

pr_app = typer.Typer(
    help=(
        "Pull-request helpers for CI: post the fleet diff as one sticky comment, updated in "
        "place (comment).\n\n"
        "Example:  reconcile pr comment --pr 42 --body-file diff.md --summary"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@pr_app.command("comment")
def comment(
    pr: Annotated[int, typer.Option("--pr", help="The pull request number.")],
    body_file: Annotated[
        Path,
        typer.Option("--body-file", help="The comment's markdown (e.g. the diff).", dir_okay=False),
    ],
    marker: Annotated[
        str,
        typer.Option("--marker", help="NAME of the hidden marker <!-- reconciler:NAME -->."),
    ] = "fleet-diff",
    summary: Annotated[
        bool,
        typer.Option("--summary", help="Also append the body to $GITHUB_STEP_SUMMARY."),
    ] = False,
) -> None:
    """Create or update the pull request's one comment carrying a hidden marker.

    The body gets `<!-- reconciler:NAME -->` as its first line; the pull request's
    comments are searched (every page) for it: the first found is edited in place, else
    a new comment is posted, so each push updates the same comment. Reads
    GITHUB_REPOSITORY (OWNER/NAME), GITHUB_API_URL (default https://api.github.com)
    and GITHUB_TOKEN (needs pull-requests: write; never printed). Exit 0 done, 1 error.

    \b
    Example:  reconcile diff --base "$BASE" --head "$HEAD" --format markdown > diff.md
              reconcile pr comment --pr 42 --body-file diff.md --summary
    """
    from reconciler.app.prcomment import PrCommentRequest, post_comment

    done = post_comment(PrCommentRequest(pr, body_file, marker, summary), os.environ)
    where = f" {done.url}" if done.url else ""
    err.print(f"{done.action} comment {done.comment_id} on #{pr}{where}", markup=False)
    if done.summary is not None:
        err.print(f"appended to the job summary {done.summary}", markup=False)
    elif done.summary_missing:
        err.print("--summary: GITHUB_STEP_SUMMARY is not set; no job summary written", markup=False)
