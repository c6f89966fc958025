"""`reconcile status`: the fleet's green/yellow/red health matrix (reconciler/app/status.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from rich.live import Live

    from reconciler.app.status import StatusScope
    from reconciler.report.status import StatusReport

FORMATS = (Format.text, Format.json)  # markdown means nothing here: refused
_WIDE = 4096  # the console width --wide prints at (lines are as long as their cells)


def status(
    repo: RepoOpt = Path(),
    fmt: Annotated[str, format_option(Format.text, Format.json)] = "text",
    selector: Annotated[
        str, typer.Option("--selector", "-l", help="k=v[,k=v]: only these agents.")
    ] = "",
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=0.5,
            help="Seconds between the two metric scrapes of the first refresh (rates, stalls).",
        ),
    ] = 5.0,
    watch: Annotated[
        float,
        typer.Option(
            "--watch",
            min=0.0,
            help="Refresh every N seconds until Ctrl-C: a live table on a terminal, one change "
            "line per refresh when piped, one JSON document per refresh with --format json.",
        ),
    ] = 0.0,
    all_agents: Annotated[bool, typer.Option("--all", help="List green agents too.")] = False,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Tier, shard, version, revision, errors and p95 columns too."),
    ] = False,
    state_dir: StateDirOpt = None,
    state_url: StateOpt = None,  # its callback selects the backend (app/state.py)
    count: Annotated[
        int, typer.Option("--count", min=0, help="With --watch: stop after N refreshes (0: never).")
    ] = 0,
) -> None:
    """Show each agent green, yellow or red, with the reasons, grouped by shard and tier.

    Red: unreachable, unknown (an unreadable stamp), foreign, dead, stale heartbeat, stalled
    (queue and no throughput), high error rate. Yellow: alive but degrading (missed
    heartbeat, errors or p95 latency up, loaded config not the applied one, drift,
    unmanaged). Idle agents are green. It also says which boxes run other config than the
    repo's head, and which of them the last rollout left behind (its failure budget).

    From the state apply itself uses (--state postgresql://..., else --state-dir, else
    fleet.yaml `state:` or `state_dir`) it shows who holds the fleet lock, and one line per
    rollout begun and not finished: running (its holder holds the lock), or cut short
    (`reconcile resume` continues it). With a shared state, that is a rollout any machine
    runs. JSON: the `state` object (schemas/status.schema.json).

    One line per agent: the name whole, the reasons cut with "…" at the terminal's width
    (80 when piped); --wide adds the other columns. Formats: text, json.

    Exit codes: 0 every agent green and on the head revision; 1 any agent red (unreachable
    and unreadable boxes are red) or bad input; 2 none red, but some box out of date or
    left behind. With --watch, the last refresh's.

    Example:  reconcile status --repo demo-fleet/fleet --watch 5
              reconcile status --repo demo-fleet/fleet --format json | jq .out_of_date
              reconcile status --state postgresql://reconciler@db.internal/reconciler
    """
    import asyncio

    from reconciler.app.status import StatusRequest, StatusSession, scope
    from reconciler.report.status import status_text

    format = pick_format(fmt, "status", *FORMATS)
    chosen = scope(StatusRequest(repo, selector, window, state_dir))
    if watch:
        view = Watch(format=format, all_agents=all_agents, wide=wide)
        try:
            asyncio.run(view.run(chosen, watch, count))
        except KeyboardInterrupt:
            pass
        finally:
            view.stop()
        raise typer.Exit(view.code)

    tell(f"reading {len(chosen.agents)} boxes over a {window:g}s window ...")

    async def once() -> StatusReport:
        async with StatusSession(chosen) as session:
            return await session.refresh()

    report = asyncio.run(once())
    if format is Format.json:
        out.print_json(json.dumps(report.model_dump(mode="json")))
    else:
        # --wide: every column whole, however long the lines get
        to = out
        if wide:
            from rich.console import Console

            to = Console(highlight=False, soft_wrap=True, width=_WIDE)
        to.print(status_text(report, all_agents=all_agents, wide=wide))
    raise typer.Exit(report.exit_code)


class Watch:
    """`--watch`: a live table on a terminal, a change line per refresh when piped, one JSON
    document per refresh with --format json; all refreshes over one kept-open session."""

    def __init__(self, *, format: Format, all_agents: bool, wide: bool) -> None:
        self.format, self.all_agents, self.wide = format, all_agents, wide
        self.before: StatusReport | None = None
        self.code = 0
        self.live: Live | None = None

    def emit(self, report: StatusReport) -> None:
        from reconciler.report.status import change_line, status_text

        if self.format is Format.json:
            out.print(json.dumps(report.model_dump(mode="json")), markup=False, highlight=False)
        elif sys.stdout.isatty():
            if self.live is None:
                from rich.console import Console
                from rich.live import Live

                self.live = Live(console=Console(), auto_refresh=False)
                self.live.start()
            table = status_text(report, all_agents=self.all_agents, wide=self.wide)
            self.live.update(table, refresh=True)  # a terminal's width: --wide may cut
        else:
            out.print(change_line(self.before, report), markup=False, highlight=False)
        sys.stdout.flush()
        self.before = report
        self.code = report.exit_code

    async def run(self, chosen: StatusScope, every: float, count: int) -> None:
        """Refresh every `every` seconds until Ctrl-C, or `count` refreshes."""
        import asyncio

        from reconciler.app.status import StatusSession

        async with StatusSession(chosen) as session:
            while True:
                started = time.monotonic()
                self.emit(await session.refresh())
                if count and session.refreshes >= count:
                    return
                await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
