"""reconcile agents: list the fleet's agents, optionally filtered by a selector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Format, RepoOpt, format_option, load_or_exit, out, pick_format


def agents(
    repo: RepoOpt = Path(),
    selector: Annotated[
        str,
        typer.Option(
            "--selector", "-l", help="k=v[,k=v]: name, tier, shard, host or a label; globs allowed."
        ),
    ] = "",
    format_name: Annotated[str, format_option(Format.text, Format.json)] = "text",
) -> None:
    """List agents with their tier, shard and box.

    Example:  reconcile agents --repo fleet-config-example --selector tier=fast,shard=eu-west
    """
    format = pick_format(format_name, "agents", Format.text, Format.json)
    from reconciler.config.select import parse_selector, select

    loaded = load_or_exit(repo)
    chosen = select((ea.agent for ea in loaded.agents.values()), parse_selector(selector))
    if format is Format.json:
        rows = [
            {
                "name": a.name,
                "tier": a.tier,
                "shard": a.shard,
                "host": a.host,
                "port": a.port,
                "user": a.user,
                "config_path": a.config_path,
                "labels": a.labels,
            }
            for a in chosen
        ]
        out.print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table("agent", "tier", "shard", "box", "config_path", box=None, pad_edge=False)
    for a in chosen:
        table.add_row(a.name, a.tier, a.shard, f"{a.user}@{a.host}:{a.port}", a.config_path)
    out.print(table)
    out.print(f"{len(chosen)} of {len(loaded.agents)} agents", style="dim")
