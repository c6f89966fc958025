"""[access]: the fields that say where and how reconciler connects, and what it runs.

A change to any of them is a class of its own in every diff, whatever else it
does: it can send the payload and the real secrets somewhere else (config_path,
secrets_path), reach another box or trust another host key (host, port, user,
key, known_hosts), run other commands as the agent's user (commands), probe
another health or metrics endpoint (health_url, metrics_url, the Prometheus
URL), read secret values from elsewhere (secrets.*), keep the journal and lock
elsewhere (state_dir, state: the shared state's URL), or change who must approve a
change (review.*, and the payload schema's x-cost-impacting markers). Pure: paths in,
a yes or no out.
"""

from __future__ import annotations

from typing import Final

from reconciler.diff.model import MOVES, FieldPath

# An agent's own fields (model/agent.py) that are access; nested paths count by their head.
AGENT_ACCESS: Final = frozenset(
    {
        "host",
        "port",
        "user",
        "key",
        "known_hosts",
        "config_path",
        "secrets_path",
        "health_url",
        "metrics_url",
        "commands",
    }
)
# fleet.yaml (model/fleet.py) paths that are access: a path counts when one of these starts it.
FLEET_ACCESS: Final[tuple[FieldPath, ...]] = (
    ("connection",),
    ("secrets",),
    ("state_dir",),
    ("state",),
    ("review",),
    ("metrics", "source"),
    ("metrics", "prometheus_url"),
    ("prometheus",),  # the box the alert rules are shipped to (its login, dir, commands)
    ("alertmanager",),  # the box alertmanager.yml is shipped to (its login, path)
)
# The review rule kept in the repo's payload schema, shown as a fleet-wide access change.
COST_MARKER: Final = "x-cost-impacting"


def is_agent_access(path: FieldPath) -> bool:
    """Whether a change of an agent's own field at `path` is [access]."""
    return bool(path) and path[0] in AGENT_ACCESS


def is_move(path: FieldPath) -> bool:
    """Whether a change at `path` moves the agent's config or secrets file (a rollout)."""
    return len(path) == 1 and path[0] in MOVES


def is_fleet_access(path: FieldPath) -> bool:
    """Whether a fleet.yaml change at `path` is [access]."""
    return any(path[: len(p)] == p for p in FLEET_ACCESS)
