"""reconcile diff: what a change does to the fleet, agent by agent and field by field.

Pull-request mode (`--base REV --head REV`) reads both revisions from git
objects (the work tree is never touched) and needs no access to the fleet.
Live mode (no revisions: the repo against the running boxes) is built on the
same core and report: whatever produces a FleetDiff calls `emit`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, fail, load_or_exit
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import FleetDiff, diff_live, diff_repos
from reconciler.model.live import BoxState, LiveBox
from reconciler.repo import GitError, read_revision
from reconciler.report import render_json, render_markdown, render_text
from reconciler.secretstore import desired_fingerprints, fleet_key
from reconciler.transport.link import FleetLink, former_agents


def report(diff: FleetDiff, format: Format) -> str:
    """The diff rendered in the chosen format."""
    if format is Format.json:
        return render_json(diff)
    if format is Format.markdown:
        return render_markdown(diff)
    return render_text(diff)


def emit(diff: FleetDiff, format: Format, *, exit_code: bool) -> None:
    """Print the report to stdout; with `exit_code`, exit 2 when anything differs."""
    typer.echo(report(diff, format), nl=False)
    if exit_code and diff.has_changes:
        raise typer.Exit(int(Exit.CHANGES))


def _label(rev: str, sha: str) -> str:
    return sha[:12] if sha.startswith(rev) else f"{rev} ({sha[:12]})"


def load_revision(repo: Path, rev: str, which: str) -> tuple[Repo, str]:
    """The config repo at `rev` and its label; on any error print it and exit 1."""
    try:
        revision = read_revision(repo, rev)
    except GitError as exc:
        fail(f"{which} revision: {exc}; pass a commit, branch or tag that exists in {repo}")
    label = _label(rev, revision.sha)
    try:
        return load_repo(revision.files), label
    except ConfigErrors as exc:
        for e in exc.errors:
            err.print(f"{which} {label}: {e}", markup=False)
        fail(
            f"{len(exc.errors)} config error(s) in the {which} revision {label}; "
            f"fix them (`git checkout {rev}` and `reconcile validate`) before diffing"
        )


def _costs(path: Path) -> dict[str, float]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"--costs {path}: cannot read it as JSON: {exc}")
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in doc.items()
    ):
        fail(f"--costs {path}: expected a JSON object of agent name -> USD per day")
    return {k: float(v) for k, v in doc.items()}


async def _read_live(loaded: Repo, root: Path) -> list[LiveBox]:
    agents = [ea.agent for ea in loaded.agents.values()]
    key = fleet_key(loaded.fleet, root)
    async with FleetLink(loaded.fleet.connection, root) as link:
        live = await link.read(agents, loaded.fleet.fleet_id, key)
        former = former_agents(root, live.values(), loaded.agents.keys())
        orphans = await link.orphans(agents, loaded.fleet.fleet_id, former)
    boxes = list(live.values())
    for o in orphans:
        boxes.append(
            LiveBox(o.agent, BoxState.MANAGED, reason=f"orphan at {o.host}:{o.port} {o.stamp_path}")
        )
    return boxes


def _live_mode(repo: Path, format: Format, *, exit_code: bool, allow_unreachable: bool) -> None:
    """The work tree's config against what every box runs now."""
    loaded = load_or_exit(repo)
    root = repo.resolve()
    err.print(f"reading {len(loaded.agents)} boxes ...", markup=False)
    boxes = asyncio.run(_read_live(loaded, root))
    unknown = [b for b in boxes if b.state is BoxState.UNKNOWN]
    fleet_diff = diff_live(
        loaded, boxes, head_label="work tree", desired_secrets=desired_fingerprints(loaded, root)
    )
    emit_report = report(fleet_diff, format)
    typer.echo(emit_report, nl=False)
    if unknown and not allow_unreachable:
        for b in unknown[:20]:
            word = "unknown" if b.stamp_error is not None else "unreachable"
            err.print(f"{word}: {b.reason}", markup=False)
        if len(unknown) > 20:
            err.print(f"... and {len(unknown) - 20} more", markup=False)
        fail(
            f"{len(unknown)} box(es) could not be read (unreachable, or an unreadable stamp);"
            " the diff is incomplete. Fix them or pass --allow-unreachable to accept a"
            " partial diff"
        )
    if exit_code and fleet_diff.has_changes:
        raise typer.Exit(int(Exit.CHANGES))


def diff(
    base: str | None = typer.Option(
        None, "--base", help="The revision the change starts from (a sha, branch or tag)."
    ),
    head: str | None = typer.Option(
        None, "--head", help="The revision to compare with --base (default: HEAD)."
    ),
    repo: RepoOpt = Path(),
    format: Format = typer.Option(Format.text, "--format", help="text, markdown or json."),
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 2 when anything changes, 0 when nothing does."
    ),
    allow_unreachable: bool = typer.Option(
        False,
        "--allow-unreachable",
        help="Live mode: report unknown boxes (unreachable, unreadable stamp), do not fail.",
    ),
    costs: Path | None = typer.Option(
        None,
        "--costs",
        help="JSON {agent: USD per day now}, for cost estimates of cost-impacting changes.",
        dir_okay=False,
    ),
) -> None:
    """Show what a change does to the fleet: agents, fields, cost flags; secrets never shown.

    Without --base (live mode) the repo's work tree is compared with what every box
    really runs (its config file, stamp and health, read over SSH and HTTP); an
    unknown box (unreachable, or its stamp unreadable) fails the run (exit 1) unless
    --allow-unreachable. With --base and --head
    (pull-request mode) both revisions are read from git objects: the work tree is
    untouched and the fleet is not contacted. Exit codes: 0 success (with
    --exit-code: no changes), 2 changes (--exit-code), 1 error.

    Examples:  reconcile diff --repo demo-fleet/fleet
               reconcile diff --base origin/main --head HEAD --format markdown
    """
    if base is None:
        if head is not None:
            fail("--head needs --base: pass both revisions to compare, e.g. --base main")
        _live_mode(repo, format, exit_code=exit_code, allow_unreachable=allow_unreachable)
        return
    cost_now = _costs(costs) if costs is not None else None
    base_repo, base_label = load_revision(repo, base, "base")
    head_repo, head_label = load_revision(repo, head or "HEAD", "head")
    fleet_diff = diff_repos(
        base_repo,
        head_repo,
        base_label=base_label,
        head_label=head_label,
        cost_per_day=cost_now,
    )
    emit(fleet_diff, format, exit_code=exit_code)
