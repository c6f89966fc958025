"""The health matrix as text (rich) and JSON (pure: data -> renderable / model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from reconciler.errors import ExitCode
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
    current: bool | None = Field(
        default=None,
        description="the box runs the repo head's config (None: its config was not read)",
    )
    left_behind: bool = Field(
        default=False, description="a budgeted rollout failed it and left it on its old config"
    )


class GroupOut(BaseModel):
    shard: str
    tier: str
    green: int
    yellow: int
    red: int


class LockOut(BaseModel):
    """The fleet lock as the state holds it now (`status --format json`'s `state.lock`)."""

    lock_id: str
    holder: str = Field(description="user@host pid N")
    rollout_id: str | None = Field(description="the rollout it is held for (None: not begun yet)")
    since: str
    expires: str
    heartbeat: str | None = Field(default=None, description="its last renewal")
    dead: str | None = Field(
        default=None,
        description="why its holder is certainly dead (the next apply or resume takes the "
        "lock over); None: alive, or not known to be dead",
    )


class RolloutOut(BaseModel):
    """A rollout begun and not finished (`status --format json`'s `state.unfinished`)."""

    rollout_id: str
    target_revision: str
    holder: str = Field(description="who began it: user@host pid N")
    started_at: str
    boxes: int = Field(description="boxes in its plan")
    running: bool = Field(
        description="its holder holds the fleet lock and is not known dead; false: cut "
        "short (`reconcile resume` continues it)"
    )


class StateOut(BaseModel):
    """What status read from the journal and the lock (--state, --state-dir or fleet.yaml)."""

    where: str = Field(
        description="the state read: a postgresql:// URL (never with a password) or the "
        "local state directory"
    )
    lock: LockOut | None = Field(default=None, description="the fleet lock (None: free)")
    unfinished: list[RolloutOut] = Field(
        default_factory=list, description="rollouts begun and not finished, oldest first"
    )
    error: str | None = Field(
        default=None, description="why the state could not be read on this refresh"
    )


class StatusReport(BaseModel):
    """`reconcile status --format json` (schemas/status.schema.json); one per refresh with
    `--watch`."""

    status_version: Literal[1] = 1
    fleet_id: str
    checked_at: str
    worst: Color
    totals: dict[str, int]
    groups: list[GroupOut]
    versions: dict[str, int] = Field(description="agent_version -> number of agents")
    revisions: dict[str, int] = Field(description="applied revision (12 chars) -> agents")
    orphans: list[str]
    agents: list[AgentStatusOut]
    head_revision: str | None = Field(default=None, description="the repo's head revision")
    out_of_date: list[str] = Field(
        default_factory=list, description="agents whose box runs other config than the head's"
    )
    left_behind: list[str] = Field(
        default_factory=list,
        description="out-of-date agents the last finished rollout left behind (its budget)",
    )
    left_by: str | None = Field(default=None, description="that rollout's id")
    state: StateOut | None = Field(
        default=None,
        description="the fleet lock and the unfinished rollouts, from the state apply "
        "uses (None: no journal here)",
    )
    exit_code: int = Field(
        default=0, description="0 all green and current, 1 any red, 2 out of date or left behind"
    )


def exit_code(worst: Color, out_of_date: list[str], left_behind: list[str]) -> int:
    """0 all green and current, 1 any red (unreachable and unreadable are red), 2 out of date
    or left behind."""
    if worst is Color.RED:
        return int(ExitCode.ERROR)
    if out_of_date or left_behind:
        return int(ExitCode.CHANGES)
    return int(ExitCode.OK)


def status_report(
    fleet_id: str,
    checked_at: str,
    rows: list[AgentStatus],
    summary: Summary,
    orphans: list[str],
    *,
    current: Mapping[str, bool | None] | None = None,
    head_revision: str | None = None,
    left_behind: Sequence[str] = (),
    left_by: str | None = None,
    state: StateOut | None = None,
) -> StatusReport:
    """The report; `current`: agent -> runs the head's config; `left_behind`: the agents the
    last finished rollout (`left_by`) left on their old config (kept only while out of date)."""
    now = current or {}
    stale = [r.agent for r in rows if now.get(r.agent) is False]
    behind = [a for a in stale if a in set(left_behind)]
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
                current=now.get(r.agent),
                left_behind=r.agent in behind,
            )
            for r in rows
        ],
        head_revision=head_revision,
        out_of_date=stale,
        left_behind=behind,
        left_by=left_by if behind else None,
        state=state,
        exit_code=exit_code(summary.worst, stale, behind),
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _groups(report: StatusReport) -> Table:
    groups = Table(title=f"fleet {report.fleet_id} at {report.checked_at}", box=None)
    for col in ("shard", "tier", "green", "yellow", "red"):
        groups.add_column(col, justify="right" if col in _COUNT_COLS else "left", no_wrap=True)
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
    return groups


def _reasons(a: AgentStatusOut) -> str:
    # scrubbed here: a narrow terminal cuts the cell, and the stream's scrub
    # (cli/redacting.py) cannot recognise a value it only sees half of
    reasons = list(a.reasons)
    if a.left_behind:
        reasons.insert(0, "left behind by the last rollout (its failure budget)")
    return scrub("; ".join(reasons)) or "ok"


class AgentLines:
    """One line per agent, laid out at render time for the console's width: the mark, the
    name whole (padded to the longest), with `wide` the tier, shard, version, revision and
    metrics whole, then the reasons, cut with an ellipsis where the line would wrap (the
    identifiers before them never are)."""

    def __init__(self, agents: list[AgentStatusOut], *, wide: bool) -> None:
        self.agents, self.wide = agents, wide

    def _cells(self, a: AgentStatusOut) -> list[str]:
        cells = [a.agent]
        if self.wide:
            cells += [
                a.tier,
                a.shard,
                a.agent_version or "?",
                a.revision or "-",
                _pct(a.error_rate),
                "-" if a.latency_p95_s is None else f"{a.latency_p95_s:.2f}s",
            ]
        return cells

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        head = ["agent", *(_WIDE_COLS if self.wide else ())]
        rows = [self._cells(a) for a in self.agents]
        widths = [max(cell_len(r[i]) for r in [head, *rows]) for i in range(len(head))]

        def line(mark: Text, cells: list[str], reasons: str) -> Text:
            text = Text.assemble(mark, " ")
            for cell, w in zip(cells, widths, strict=True):
                text.append(cell + " " * (w - cell_len(cell) + 2))
            room = options.max_width - text.cell_len
            tail = Text(reasons)
            if not self.wide and tail.cell_len > room:
                tail.truncate(max(room, 1), overflow="ellipsis")
            text.append_text(tail)
            return text

        yield line(Text(" "), head, "reasons")
        for a, cells in zip(self.agents, rows, strict=True):
            yield line(Text(_MARK[a.color], style=_STYLE[a.color]), cells, _reasons(a))


def _agents(report: StatusReport, *, all_agents: bool, wide: bool) -> AgentLines | None:
    """The agents to list: every one not green or not current (all with all_agents)."""
    shown = [
        a
        for a in report.agents
        if all_agents or a.color is not Color.GREEN or a.current is False or a.left_behind
    ]
    return AgentLines(shown, wide=wide) if shown else None


def state_lines(state: StateOut | None) -> list[Text]:
    """One line for the fleet lock (naming the state read) and one per unfinished rollout:
    what an operator on any machine sees of a rollout another one runs."""
    if state is None:
        return []
    where = scrub(state.where)
    if state.error is not None:
        return [Text(f"state {where}: not read: {scrub(state.error)}", style="yellow")]
    lock = state.lock
    if lock is None:
        lines = [Text(f"fleet lock: free (state {where})")]
    else:
        rollout = lock.rollout_id or "not begun yet"
        line = f"fleet lock: held by {lock.holder}, rollout {rollout}, since {lock.since}"
        if lock.dead is not None:
            line += f"; its holder is dead ({lock.dead}): the next apply or resume takes it over"
        lines = [Text(f"{line} (state {where})", style="yellow" if lock.dead else "")]
    for r in state.unfinished:
        what = (
            f"revision {r.target_revision[:12]}, {r.boxes} boxes, started {r.started_at} "
            f"by {r.holder}"
        )
        if r.running:
            lines.append(Text(f"rollout {r.rollout_id} running: {what}", style="bold"))
        else:
            lines.append(
                Text(
                    f"rollout {r.rollout_id} cut short: {what}; `reconcile resume` continues it",
                    style="yellow",
                )
            )
    return lines


def verdict(report: StatusReport) -> Text:
    """One line: every agent green and current, or what is not (never "green" when behind)."""
    parts: list[str] = []
    t = report.totals
    if t.get("red", 0):
        parts.append(f"{t['red']} red")
    if t.get("yellow", 0):
        parts.append(f"{t['yellow']} yellow")
    if report.out_of_date:
        head = f" ({report.head_revision})" if report.head_revision else ""
        parts.append(f"{len(report.out_of_date)} not on the head revision{head}")
    if report.left_behind:
        by = f" {report.left_by}" if report.left_by else ""
        parts.append(f"{len(report.left_behind)} left behind by rollout{by}")
    if not parts:
        return Text("every agent is green and on the head revision", style="green")
    style = {0: "green", 1: "bold red", 2: "yellow"}.get(report.exit_code, "yellow")
    return Text(f"{', '.join(parts)} (exit {report.exit_code})", style=style)


def status_text(
    report: StatusReport, *, all_agents: bool = False, wide: bool = False
) -> RenderableType:
    """Totals per shard and tier, the fleet lock and any unfinished rollout (from the state),
    then every agent that is not green and current (all with all_agents), then one verdict
    line. `wide`: tier, shard, version, revision and metrics
    columns too, every cell whole: print it with a console as wide as the lines (80 columns
    keep the agent name whole and cut the reasons with an ellipsis)."""
    versions = ", ".join(f"{v}: {n}" for v, n in report.versions.items())
    parts: list[RenderableType] = [_groups(report), Text(f"agent versions: {versions}")]
    if report.orphans:
        parts.append(Text(f"orphans (stamped, not in the repo): {', '.join(report.orphans)}"))
    parts.extend(state_lines(report.state))
    rows = _agents(report, all_agents=all_agents, wide=wide)
    if rows is not None:
        parts.append(rows)
    parts.append(verdict(report))
    return Group(*parts)


def change_line(before: StatusReport | None, now: StatusReport) -> str:
    """One line for a piped `--watch` refresh: the totals and which agents changed color."""
    t = now.totals
    head = (
        f"{now.checked_at} green {t.get('green', 0)} yellow {t.get('yellow', 0)} "
        f"red {t.get('red', 0)} out-of-date {len(now.out_of_date)} "
        f"left-behind {len(now.left_behind)}"
    )
    running = [r.rollout_id for r in (now.state.unfinished if now.state else []) if r.running]
    if running:
        head += f" running {', '.join(running)}"
    if before is None:
        return head
    was = {a.agent: a.color for a in before.agents}
    moved = [
        f"{a.agent} {was[a.agent]}->{a.color}"
        for a in now.agents
        if a.agent in was and was[a.agent] is not a.color
    ]
    return head + (f"; {', '.join(moved)}" if moved else "; no change")


_COUNT_COLS = {"green", "yellow", "red"}
_WIDE_COLS = ("tier", "shard", "version", "revision", "errors", "p95")
