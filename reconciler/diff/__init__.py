"""The fleet diff: desired config against current (a base revision or the live boxes).

Pure core: `diff_repos` (pull-request mode) and `diff_live` (live mode) build a
`FleetDiff`; `group_agents` folds agents that make the same change; reports
in reconciler/report/ render it.
"""

from reconciler.diff.alerts import diff_alerts, diff_alerts_live
from reconciler.diff.fleet import diff_live, diff_repos, parse_config
from reconciler.diff.group import Group, group_agents
from reconciler.diff.model import (
    AgentDiff,
    AgentStatus,
    AlertChange,
    ChangeKind,
    CostEstimate,
    FieldChange,
    FleetDiff,
    SecretsChange,
)
from reconciler.diff.summary import Summary, summarise
from reconciler.diff.values import ValueChange, diff_values, patch

__all__ = [
    "AgentDiff",
    "AgentStatus",
    "AlertChange",
    "ChangeKind",
    "CostEstimate",
    "FieldChange",
    "FleetDiff",
    "Group",
    "SecretsChange",
    "Summary",
    "ValueChange",
    "diff_alerts",
    "diff_alerts_live",
    "diff_live",
    "diff_repos",
    "diff_values",
    "group_agents",
    "parse_config",
    "patch",
    "summarise",
]
