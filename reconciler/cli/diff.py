"""`reconcile diff`: what a change does to the fleet (reconciler/app/diff.py), rendered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, format_option, pick_format
from reconciler.cli.progress import tell
from reconciler.errors import Refused

if TYPE_CHECKING:
    from reconciler.diff import FleetDiff
    from reconciler.model.live import LiveBox


FORMATS = (Format.text, Format.markdown, Format.json)


def report(diff: FleetDiff, format: Format) -> str:
    """The diff rendered in the chosen format."""
    from reconciler.report import render_json, render_markdown, render_text

    if format is Format.json:
        return render_json(diff)
    if format is Format.markdown:
        return render_markdown(diff)
    return render_text(diff)


def _unknown(unknown: tuple[LiveBox, ...]) -> Refused:
    lines = [
        f"{'unknown' if b.stamp_error is not None else 'unreachable'}: {b.reason}"
        for b in unknown[:20]
    ]
    if len(unknown) > 20:
        lines.append(f"... and {len(unknown) - 20} more")
    return Refused(
        f"{len(unknown)} box(es) could not be read (unreachable, or an unreadable stamp);"
        " the diff is incomplete. Fix them or pass --allow-unreachable to accept a"
        " partial diff",
        tuple(lines),
    )


def diff(
    base: Annotated[
        str | None,
        typer.Option("--base", help="The revision the change starts from (a sha, branch or tag)."),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option("--head", help="The revision to compare with --base (default: HEAD)."),
    ] = None,
    repo: RepoOpt = Path(),
    fmt: Annotated[str, format_option(*FORMATS)] = "text",
    exit_code: Annotated[
        bool,
        typer.Option("--exit-code", help="Exit 2 when anything changes, 0 when nothing does."),
    ] = False,
    allow_unreachable: Annotated[
        bool,
        typer.Option(
            "--allow-unreachable",
            help="Live mode: report unknown boxes (unreachable, unreadable stamp), do not fail.",
        ),
    ] = False,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs",
            help="JSON {agent: USD per day now}, for cost estimates of cost-impacting changes.",
            dir_okay=False,
        ),
    ] = None,
    cost_window: Annotated[
        float | None,
        typer.Option(
            "--cost-window",
            help="Seconds of traffic a cost estimate is measured over (live: the boxes' "
            "metrics, default 5; Prometheus: default 86400); 0: no measuring.",
            min=0,
        ),
    ] = None,
) -> None:
    """Show what a change does to the fleet: agents, fields, cost flags; secrets never shown.

    Without --base (live mode) the repo's work tree is compared with what every box
    really runs (its config file, stamp and health, read over SSH and HTTP); an
    unknown box (unreachable, or its stamp unreadable) fails the run (exit 1) unless
    --allow-unreachable. With --base and --head
    (pull-request mode) both revisions are read from git objects: the work tree is
    untouched and the fleet is not contacted. Exit codes: 0 success (with
    --exit-code: no changes), 2 changes (--exit-code), 1 error. Cost-impacting changes
    carry a dollar estimate: fleet.yaml `prices` times traffic (docs/cost.md).

    Examples:  reconcile diff --repo demo-fleet/fleet
               reconcile diff --base origin/main --head HEAD --format markdown
               reconcile diff --repo demo-fleet/fleet --cost-window 30
    """
    import asyncio

    from reconciler.app.diff import DiffRequest
    from reconciler.app.diff import diff as run_diff

    form = pick_format(fmt, "diff", *FORMATS)
    done = asyncio.run(run_diff(DiffRequest(repo, base, head, costs, cost_window), tell))
    typer.echo(report(done.diff, form), nl=False)
    if done.unknown and not allow_unreachable:
        raise _unknown(done.unknown)
    if exit_code and done.diff.has_changes:
        raise typer.Exit(int(Exit.CHANGES))
