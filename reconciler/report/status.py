"""The health matrix as text (rich) and JSON (pure: data -> renderable / model)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from reconciler.secrets.redact import scrub
from reconciler.status.matrix import AgentStatus, Color, Summary

_STYLE = {Color.GREEN: "green", Color.YELLOW: "yellow", Color.RED: "bold red"}
_MARK = {Color.GREEN: "●", Color.YELLOW: "▲", Color.RED: "✖"}


class AgentStatusOut(BaseModel):
    """One agent's row in `reconcile status --format json`."""

    agent: str
    tier: str
    shard: str
    color: Color
    reasons: list[str]
    state: str
    agent_version: str | None
    revision: str | None
    heartbeat_age_s: float | None
    error_rate: float | None
    latency_p95_s: float | None
    queue_depth: int | None


class GroupOut(BaseModel):
    shard: str
    tier: str
    green: int
    yellow: int
    red: int


class StatusReport(BaseModel):
    """`reconcile status --format json`."""

    fleet_id: str
    checked_at: str
    worst: Color
    totals: dict[str, int]
    groups: list[GroupOut]
    versions: dict[str, int] = Field(description="agent_version -> number of agents")
    revisions: dict[str, int] = Field(description="applied revision (12 chars) -> agents")
    orphans: list[str]
    agents: list[AgentStatusOut]


def status_report(
    fleet_id: str, checked_at: str, rows: list[AgentStatus], summary: Summary, orphans: list[str]
) -> StatusReport:
    return StatusReport(
        fleet_id=fleet_id,
        checked_at=checked_at,
        worst=summary.worst,
        totals={c.value: n for c, n in summary.colors.items()},
        groups=[
            GroupOut(
                shard=s, tier=t, green=c[Color.GREEN], yellow=c[Color.YELLOW], red=c[Color.RED]
            )
            for (s, t), c in summary.groups.items()
        ],
        versions={v: len(agents) for v, agents in summary.versions.items()},
        revisions=summary.revisions,
        orphans=orphans,
        agents=[
            AgentStatusOut(
                agent=r.agent,
                tier=r.tier,
                shard=r.shard,
                color=r.color,
                reasons=list(r.reasons),
                state=r.state.value,
                agent_version=r.agent_version,
                revision=r.revision,
                heartbeat_age_s=r.heartbeat_age_s,
                error_rate=r.error_rate,
                latency_p95_s=r.latency_p95_s,
                queue_depth=r.queue_depth,
            )
            for r in rows
        ],
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def status_text(report: StatusReport, *, all_agents: bool = False) -> RenderableType:
    """Totals per shard and tier, then every agent that is not green (all with all_agents)."""
    groups = Table(title=f"fleet {report.fleet_id} at {report.checked_at}", box=None)
    for col in ("shard", "tier", "green", "yellow", "red"):
        groups.add_column(col, justify="right" if col in _STYLE_COLS else "left")
    for g in report.groups:
        groups.add_row(
            g.shard,
            g.tier,
            Text(str(g.green), style="green"),
            Text(str(g.yellow), style="yellow" if g.yellow else "dim"),
            Text(str(g.red), style="bold red" if g.red else "dim"),
        )
    t = report.totals
    groups.add_row(
        "all",
        "",
        str(t.get("green", 0)),
        str(t.get("yellow", 0)),
        str(t.get("red", 0)),
        style="bold",
    )
    rows = Table(box=None)
    for col in ("", "agent", "tier", "shard", "version", "errors", "p95", "reasons"):
        rows.add_column(col)
    shown = 0
    for a in report.agents:
        if a.color is Color.GREEN and not all_agents:
            continue
        shown += 1
        rows.add_row(
            Text(_MARK[a.color], style=_STYLE[a.color]),
            a.agent,
            a.tier,
            a.shard,
            a.agent_version or "?",
            _pct(a.error_rate),
            "-" if a.latency_p95_s is None else f"{a.latency_p95_s:.2f}s",
            # scrubbed here: a narrow terminal cuts the cell, and the stream's scrub
            # (cli/redacting.py) cannot recognise a value it only sees half of
            scrub("; ".join(a.reasons)) or "ok",
        )
    versions = ", ".join(f"{v}: {n}" for v, n in report.versions.items())
    parts: list[RenderableType] = [groups, Text(f"agent versions: {versions}")]
    if report.orphans:
        parts.append(Text(f"orphans (stamped, not in the repo): {', '.join(report.orphans)}"))
    if shown:
        parts.append(rows)
    else:
        parts.append(Text("every agent is green", style="green"))
    return Group(*parts)


_STYLE_COLS = {"green", "yellow", "red"}
