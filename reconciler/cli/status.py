"""`reconcile status`: the fleet's green/yellow/red health matrix (reconciler/app/status.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import (
    Exit,
    Format,
    RepoOpt,
    err_console,
    format_option,
    out,
    pick_format,
)
from reconciler.cli.progress import tell


def status(
    repo: RepoOpt = Path(),
    fmt: Annotated[str, format_option(Format.text, Format.json)] = "text",
    selector: Annotated[
        str, typer.Option("--selector", "-l", help="k=v[,k=v]: only these agents.")
    ] = "",
    window: Annotated[
        float,
        typer.Option(
            "--window", min=0.5, help="Seconds between the two metric scrapes (rates, stalls)."
        ),
    ] = 5.0,
    watch: Annotated[
        float,
        typer.Option(
            "--watch", min=0.0, help="Refresh every N seconds until Ctrl-C (text format)."
        ),
    ] = 0.0,
    all_agents: Annotated[bool, typer.Option("--all", help="List green agents too.")] = False,
) -> None:
    """Show each agent green, yellow or red, with the reasons, grouped by shard and tier.

    Red: unreachable, unknown (an unreadable stamp), foreign, dead, stale heartbeat, stalled
    (queue and no throughput), high error rate. Yellow: alive but degrading (missed
    heartbeat, errors or p95 latency up, loaded config not the applied one, drift,
    unmanaged). Idle agents are green. Exits 1 when any agent is red.

    Example:  reconcile status --repo demo-fleet/fleet --watch 5
    """
    import asyncio

    from rich.live import Live

    from reconciler.app.status import StatusRequest, scope
    from reconciler.app.status import status as run_status
    from reconciler.report.status import status_text
    from reconciler.status import Color

    format = pick_format(fmt, "status", Format.text, Format.json)
    chosen = scope(StatusRequest(repo, selector, window))
    if watch and format is Format.text:
        with Live(console=err_console(), auto_refresh=False) as live:
            try:
                while True:
                    report = asyncio.run(run_status(chosen))
                    live.update(status_text(report, all_agents=all_agents), refresh=True)
                    time.sleep(watch)
            except KeyboardInterrupt:
                pass
        return
    tell(f"reading {len(chosen.agents)} boxes over a {window:g}s window ...")
    report = asyncio.run(run_status(chosen))
    if format is Format.json:
        out.print_json(json.dumps(report.model_dump(mode="json")))
    else:
        out.print(status_text(report, all_agents=all_agents))
    if report.worst is Color.RED:
        raise typer.Exit(int(Exit.ERROR))
