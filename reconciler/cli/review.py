"""`reconcile review`: a pull request's check fails until its change has the approvals it needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Exit, RepoOpt, err, fail, out


def review(
    base: Annotated[
        str | None,
        typer.Option("--base", help="The pull request's base revision (its rules judge)."),
    ] = None,
    head: Annotated[
        str | None, typer.Option("--head", help="The pull request's head commit.")
    ] = None,
    pr: Annotated[int | None, typer.Option("--pr", help="The pull request number.")] = None,
    repo: RepoOpt = Path(),
    codeowners: Annotated[
        bool,
        typer.Option(
            "--codeowners",
            help="Write a CODEOWNERS mapping the review rules to paths instead of judging.",
        ),
    ] = False,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="With --codeowners: the file to write (default: print it).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check that a pull request has the approvals its cost-impacting or [access] changes need.

    The change is the fleet diff of --base..--head; the rules are the BASE revision's
    fleet.review (cost_impacting_approvers, access_approvers): one approver of a list is
    enough. Reviews are read from GitHub (GITHUB_REPOSITORY, GITHUB_API_URL,
    GITHUB_TOKEN): per reviewer the latest approve / request-changes / dismissed review
    counts, and an approval counts only on the pull request's current head commit (a push
    after it needs a new one). Team approvers (@org/team) need a token that reads team
    membership (read:org); without one the check says so: enforce them with
    `--codeowners` and branch protection's required code-owner review. Exit 0 when
    satisfied, 1 naming who must approve (or on an error).

    \b
    Examples:  reconcile review --base origin/main --head "$HEAD_SHA" --pr 42
               reconcile review --codeowners --out .github/CODEOWNERS
    """
    from reconciler.app import review as use

    if codeowners:
        text, written = use.write_codeowners(repo, base, out_path)
        if written is None:
            out.print(text, end="", markup=False)
        else:
            err.print(f"wrote {written}", markup=False)
        return
    if base is None or head is None or pr is None:
        fail("reconcile review needs --base, --head and --pr (or --codeowners)")
    done = use.review(use.ReviewRequest(repo, base, head, pr), os.environ)
    if not done.verdicts:
        out.print("ok: no cost-impacting or [access] changes; no approval needed", markup=False)
        return
    for v in done.verdicts:
        out.print(v.line(done.rules_from), markup=False)
    if done.stale:
        names = ", ".join(f"@{s}" for s in sorted(done.stale))
        out.print(
            f"not counted: approvals by {names} were given on an older commit, not on "
            f"{done.head_sha[:12]}",
            markup=False,
        )
    if not done.satisfied:
        raise typer.Exit(int(Exit.ERROR))
