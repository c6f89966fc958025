"""`reconcile capacity`: per tier, the load seen and the agents it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Format, RepoOpt, format_option, out, pick_format
from reconciler.errors import Refused

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smh]?)$")


def parse_window(text: str) -> float:
    """'10m', '90s', '1h' or plain seconds -> seconds; Refused for anything else."""
    m = _DURATION.match(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise Refused(f"--window {text!r}: give a positive duration such as 30s, 10m or 1h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def capacity(
    repo: RepoOpt = Path(),
    tier: Annotated[
        str | None, typer.Option("--tier", help="Only this tier (default: every tier).")
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="How long to watch the load (30s, 10m, 1h).")
    ] = "10m",
    fmt_name: Annotated[str, format_option(Format.text, Format.json, Format.markdown)] = "text",
) -> None:
    """Per tier: λ, peak arrivals, service time, concurrency, and the agents needed.

    N = ceil(λ·s / (c·U)), U from fleet.yaml `capacity:` (latency-sensitive 0.65, batch
    0.85), shown with and without headroom against the agents the repo runs. Reads the
    boxes' metrics over the window (or Prometheus, when fleet.yaml names one). See
    docs/capacity.md.

    Example:  reconcile capacity --repo demo-fleet/fleet --tier fast --window 1m --format json
    """
    fmt = pick_format(fmt_name, "capacity", Format.text, Format.json, Format.markdown)
    import asyncio

    from reconciler.app.capacity import CapacityRequest
    from reconciler.app.capacity import capacity as run_capacity
    from reconciler.capacity.report import to_json, to_markdown, to_text

    seconds = parse_window(window)
    report = asyncio.run(run_capacity(CapacityRequest(repo, tier, seconds)))
    if fmt is Format.json:
        text = to_json(report) + "\n"
    elif fmt is Format.markdown:
        text = to_markdown(report)
    else:
        text = to_text(report)
    out.print(text, end="", markup=False, highlight=False)
