"""The fleet diff as JSON: the diff itself, its headline counts, and its groups.

`DiffReport` is registered in report/schemas.py, so its JSON Schema is
schemas/diff.schema.json (`python -m reconciler.devtools.schemas`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reconciler.diff.group import Group, group_agents
from reconciler.diff.model import AgentStatus, CostTotal, FieldChange, FleetDiff, SecretsChange
from reconciler.diff.summary import Summary, summarise
from reconciler.report.diff_values import group_total

DIFF_REPORT_VERSION = 1


class GroupOut(BaseModel):
    """Agents sharing one change set, as listed in the reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: str = Field(description="Who: 'us-east-fast-001' or '140 agents in tier fast'.")
    status: AgentStatus
    agents: list[str]
    changes: list[FieldChange] = Field(description="The shared payload changes (first agent's).")
    access: list[FieldChange] = Field(
        description="[access]: where and how reconciler connects, what it runs (first agent's)."
    )
    settings: list[FieldChange]
    secrets: SecretsChange | None
    cost_impacting: bool
    restart_required: bool
    moved: bool = Field(description="The config or secrets file moves: written to the new path.")
    cost_delta_per_day: float | None
    cost: CostTotal | None = Field(
        default=None, description="The group's summed estimate: old, new, change per day and month."
    )


class DiffReport(BaseModel):
    """`reconcile diff --format json`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = DIFF_REPORT_VERSION
    summary: Summary
    groups: list[GroupOut]
    diff: FleetDiff


def _group(g: Group) -> GroupOut:
    a = g.first
    return GroupOut(
        scope=g.scope(),
        status=a.status,
        agents=list(g.names),
        changes=list(a.changes),
        access=list(a.access),
        settings=list(a.settings),
        secrets=a.secrets,
        cost_impacting=g.cost_impacting,
        restart_required=g.restart_required,
        moved=a.moved,
        cost_delta_per_day=g.cost_delta_per_day,
        cost=group_total(g),
    )


def diff_report(diff: FleetDiff) -> DiffReport:
    """The JSON report's model of a diff."""
    return DiffReport(
        summary=summarise(diff),
        groups=[_group(g) for g in group_agents(diff.agents)],
        diff=diff,
    )


def render_json(diff: FleetDiff) -> str:
    """The JSON report, indented, with a trailing newline."""
    return diff_report(diff).model_dump_json(indent=2) + "\n"
