"""The headline numbers of a fleet diff: how many agents change, and how."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reconciler.diff.model import AgentStatus, FleetDiff, SecretValueCheck


class Summary(BaseModel):
    """Counts over the agents of a FleetDiff (each agent counted once per line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollout: int = Field(description="Agents whose box a rollout would touch.")
    changed: int
    added: int
    removed: int
    drifted: int
    settings_only: int = Field(
        description="Agents with settings or [access] changes only: no rollout."
    )
    access: int = Field(description="Agents with an [access] change.")
    moved: int = Field(
        description="Agents whose config or secrets file moves: a rollout to the new path."
    )
    secrets_changed: int
    unknown: int
    foreign: int
    unchanged: int
    cost_impacting: int = Field(description="Agents with a cost-impacting change.")
    restart_required: int = Field(description="Agents that need a restart, not a reload.")
    cost_delta_per_day: float | None = Field(
        description="Sum of the estimates; null when any cost-impacting agent has none."
    )
    fleet_settings: int = Field(description="fleet.yaml fields that change (not [access]).")
    fleet_access: int = Field(description="Fleet-wide [access] changes (fleet.yaml, schema).")
    alerts: int = Field(default=0, description="Alert rules added, removed or changed.")
    secret_files: int = Field(
        default=0,
        description="Encrypted secret files whose value changed or could not be compared "
        "(pull-request mode).",
    )
    has_changes: bool


def summarise(diff: FleetDiff) -> Summary:
    """Count a diff's agents by status and flag."""
    by = dict.fromkeys(AgentStatus, 0)
    for a in diff.agents:
        by[a.status] += 1
    costly = [a for a in diff.agents if a.cost_impacting or (a.cost and a.cost.delta_per_day)]
    deltas = [a.cost.delta_per_day if a.cost else None for a in costly]
    return Summary(
        rollout=sum(a.rollout for a in diff.agents),
        changed=by[AgentStatus.CHANGED],
        added=by[AgentStatus.ADDED],
        removed=by[AgentStatus.REMOVED],
        drifted=by[AgentStatus.DRIFTED],
        settings_only=sum(bool(a.settings or a.access) and not a.rollout for a in diff.agents),
        access=sum(bool(a.access) for a in diff.agents),
        moved=sum(a.moved for a in diff.agents),
        secrets_changed=sum(a.secrets is not None and a.secrets.changed for a in diff.agents),
        unknown=by[AgentStatus.UNKNOWN],
        foreign=by[AgentStatus.FOREIGN],
        unchanged=diff.unchanged,
        cost_impacting=sum(a.cost_impacting for a in diff.agents),
        restart_required=sum(a.restart_required for a in diff.agents),
        cost_delta_per_day=(
            sum(d for d in deltas if d is not None)
            if deltas and all(d is not None for d in deltas)
            else None
        ),
        fleet_settings=len(diff.fleet_settings),
        fleet_access=len(diff.fleet_access),
        alerts=len(diff.alerts),
        secret_files=sum(f.value is not SecretValueCheck.SAME for f in diff.secret_files),
        has_changes=diff.has_changes,
    )
