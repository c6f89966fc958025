"""Grouping: agents that make exactly the same change are shown once.

The key is the agent's status and the exact set of (path, kind, old, new) of
its payload changes, [access] changes, settings changes and secrets change; provenance is not
part of it (the same change set from two shard files is still one change).
A group is described by what its agents share: "140 agents in tier fast".
Groups sort cost-impacting first, then by size (largest first), then by
their first agent's name, so the same diff always reads the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.diff.model import (
    PROBLEM_STATUSES,
    AgentDiff,
    AgentStatus,
    FieldChange,
    SecretsChange,
)
from reconciler.diff.values import canonical

_ChangeKey = tuple[tuple[str, ...], str, str, str]
GroupKey = tuple[
    str,
    bool,
    tuple[_ChangeKey, ...],
    tuple[_ChangeKey, ...],
    tuple[_ChangeKey, ...],
    tuple[str, ...],
]

_STATUS_ORDER = {
    AgentStatus.REMOVED: 0,
    AgentStatus.ADDED: 1,
    AgentStatus.DRIFTED: 2,
    AgentStatus.CHANGED: 3,
    AgentStatus.UNCHANGED: 4,
    AgentStatus.FOREIGN: 5,
    AgentStatus.UNKNOWN: 6,
}


def _changes_key(changes: Sequence[FieldChange]) -> tuple[_ChangeKey, ...]:
    return tuple((c.path, str(c.kind), canonical(c.old), canonical(c.new)) for c in changes)


def _secrets_key(s: SecretsChange | None) -> tuple[str, ...]:
    return () if s is None else (str(s.check), s.old or "", s.new or "")


def group_key(a: AgentDiff) -> GroupKey:
    """What two agents must share to be shown as one group."""
    return (
        str(a.status),
        a.format_only,
        _changes_key(a.changes),
        _changes_key(a.access),
        _changes_key(a.settings),
        _secrets_key(a.secrets),
    )


@dataclass(frozen=True, slots=True)
class Group:
    """Agents sharing one change set; `first` is a representative (provenance from it)."""

    agents: tuple[AgentDiff, ...]

    @property
    def first(self) -> AgentDiff:
        return self.agents[0]

    @property
    def size(self) -> int:
        return len(self.agents)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.agent for a in self.agents)

    @property
    def status(self) -> AgentStatus:
        return self.first.status

    @property
    def cost_impacting(self) -> bool:
        return self.first.cost_impacting

    @property
    def restart_required(self) -> bool:
        return self.first.restart_required

    @property
    def access(self) -> bool:
        """The group's agents change where or how reconciler connects, or what it runs."""
        return bool(self.first.access)

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(sorted({a.tier for a in self.agents if a.tier}))

    @property
    def shards(self) -> tuple[str, ...]:
        return tuple(sorted({a.shard for a in self.agents if a.shard}))

    def sources(self, change: int) -> tuple[str, ...]:
        """Every distinct file:line that set the group's `change`-th payload change."""
        out = set()
        for a in self.agents:
            c = a.changes[change]
            out.add(c.source or (f"was {c.old_source}" if c.old_source else "?"))
        return tuple(sorted(out))

    @property
    def cost_delta_per_day(self) -> float | None:
        """The group's summed estimate; None when any member has no figure."""
        deltas = [a.cost.delta_per_day if a.cost else None for a in self.agents]
        if not deltas or any(d is None for d in deltas):
            return None
        return sum(d for d in deltas if d is not None)

    def scope(self) -> str:
        """Who the group is: 'us-east-fast-001', or '140 agents in tier fast, shard eu-west'."""
        if self.size == 1:
            return self.first.agent
        where: list[str] = []
        for word, values in (("tier", self.tiers), ("shard", self.shards)):
            if len(values) == 1:
                where.append(f"{word} {values[0]}")
            elif 1 < len(values) <= 3 and len(where) == 0:
                where.append(f"{word}s {', '.join(values)}")
        suffix = f" in {', '.join(where)}" if where else ""
        return f"{self.size} agents{suffix}"

    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Problems last, cost-impacting first, then larger groups, then status and name."""
        return (
            int(self.status in PROBLEM_STATUSES),
            int(not self.cost_impacting),
            -self.size,
            _STATUS_ORDER[self.status],
            self.first.agent,
        )


def group_agents(agents: Sequence[AgentDiff]) -> list[Group]:
    """The agents that differ, grouped by identical change sets, in reading order."""
    members: dict[GroupKey, list[AgentDiff]] = {}
    for a in sorted(agents, key=lambda a: a.agent):
        if a.changed or a.status in PROBLEM_STATUSES:
            # Unreachable or foreign boxes group by state; each keeps its own reason.
            key = group_key(a)
            members.setdefault(key, []).append(a)
    return sorted((Group(tuple(v)) for v in members.values()), key=Group.sort_key)
