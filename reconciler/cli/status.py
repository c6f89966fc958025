"""reconcile status: the fleet's green/yellow/red health matrix, read from the boxes now."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.live import Live

from reconciler.cli.common import Exit, Format, RepoOpt, err, fail, load_or_exit, out
from reconciler.config.repo import Repo
from reconciler.config.select import SelectorError, parse_selector, select
from reconciler.model.agent import Agent
from reconciler.model.live import BoxState
from reconciler.render import render_payload, sha256_hex
from reconciler.report.status import StatusReport, status_report, status_text
from reconciler.secretstore import fleet_key
from reconciler.status import Color, Signals, assess, summarize
from reconciler.transport.link import FleetLink, former_agents
from reconciler.transport.metrics import MetricRates, Problem, Reason


def _signals(r: MetricRates | Problem | None) -> Signals:
    if r is None:
        return Signals(problem="not scraped")
    if isinstance(r, Problem):
        if r.reason is Reason.NO_TASKS:
            return Signals(tasks_per_s=0.0, samples=0)
        return Signals(problem=str(r))
    return Signals(
        tasks_per_s=r.tasks_per_s,
        error_rate=r.error_rate,
        latency_p95_s=r.latency_p95_s if r.latency_samples else None,
        samples=r.samples,
    )


async def collect(repo: Repo, root: Path, agents: list[Agent], window_s: float) -> StatusReport:
    """Read every box and its metrics over the window; judge each agent."""
    key = fleet_key(repo.fleet, root)
    async with FleetLink(repo.fleet.connection, root) as link:
        live_task = asyncio.create_task(link.read(agents, repo.fleet.fleet_id, key))
        rates = await link.rates(agents, window_s)
        live = await live_task
        former = former_agents(root, live.values(), repo.agents.keys())
        orphans = await link.orphans(agents, repo.fleet.fleet_id, former)
    # Metrics of a box that could not be read say nothing; one that answered with an
    # unreadable stamp is still judged by them.
    answered = {
        n for n, b in live.items() if b.state is not BoxState.UNKNOWN or b.stamp_error is not None
    }
    signals = {a.name: _signals(rates.get(a.name) if a.name in answered else None) for a in agents}
    peers: dict[str, list[float]] = {}
    for a in agents:
        p95 = signals[a.name].latency_p95_s
        if p95 is not None:
            peers.setdefault(a.tier, []).append(p95)
    rows = []
    for a in agents:
        box = live[a.name]
        tier_p95 = statistics.median(peers[a.tier]) if len(peers.get(a.tier, [])) >= 3 else None
        rows.append(
            assess(
                a.name,
                a.tier,
                a.shard,
                box,
                signals[a.name],
                desired_sha=sha256_hex(render_payload(a.config)),
                peer_p95_s=tier_p95,
            )
        )
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return status_report(
        repo.fleet.fleet_id, checked, rows, summarize(rows), [o.agent for o in orphans]
    )


def status(
    repo: RepoOpt = Path(),
    format: Format = typer.Option(Format.text, "--format", help="text or json."),
    selector: str = typer.Option("", "--selector", "-l", help="k=v[,k=v]: only these agents."),
    window: float = typer.Option(
        5.0, "--window", min=0.5, help="Seconds between the two metric scrapes (rates, stalls)."
    ),
    watch: float = typer.Option(
        0.0, "--watch", min=0.0, help="Refresh every N seconds until Ctrl-C (text format)."
    ),
    all_agents: bool = typer.Option(False, "--all", help="List green agents too."),
) -> None:
    """Show each agent green, yellow or red, with the reasons, grouped by shard and tier.

    Red: unreachable, unknown (an unreadable stamp), foreign, dead, stale heartbeat, stalled
    (queue and no throughput), high error rate. Yellow: alive but degrading (missed
    heartbeat, errors or p95 latency up, loaded config not the applied one, drift,
    unmanaged). Idle agents are green. Exits 1 when any agent is red.

    Example:  reconcile status --repo demo-fleet/fleet --watch 5
    """
    loaded = load_or_exit(repo)
    try:
        terms = parse_selector(selector)
    except SelectorError as exc:
        fail(str(exc))
    agents = select((ea.agent for ea in loaded.agents.values()), terms)
    if not agents:
        fail(f"no agent matches {selector!r}")
    root = repo.resolve()
    if watch and format is Format.text:
        with Live(console=err, auto_refresh=False) as live:
            try:
                while True:
                    report = asyncio.run(collect(loaded, root, agents, window))
                    live.update(status_text(report, all_agents=all_agents), refresh=True)
                    time.sleep(watch)
            except KeyboardInterrupt:
                pass
        return
    err.print(f"reading {len(agents)} boxes over a {window:g}s window ...", markup=False)
    report = asyncio.run(collect(loaded, root, agents, window))
    if format is Format.json:
        out.print_json(json.dumps(report.model_dump(mode="json")))
    else:
        out.print(status_text(report, all_agents=all_agents))
    if report.worst is Color.RED:
        raise typer.Exit(int(Exit.ERROR))
