"""Two scrapes of one agent's /metrics -> its AgentWindow, or why not (pure).

The checks of transport/metrics.py's `rates` decide validity (counter reset,
NaN/Inf/negative, missing series, no time elapsed, changed buckets); the
window then holds the raw increases the gates test.
"""

from __future__ import annotations

from reconciler.gates import AgentWindow
from reconciler.model.box import (
    METRIC_COST,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
)
from reconciler.transport.metrics import AUTH_ERRORS, MetricSnapshot, Problem, Reason, rates


def window_between(agent: str, before: MetricSnapshot, after: MetricSnapshot) -> AgentWindow | str:
    """The increases between two snapshots of `agent`; a reason string when unusable."""
    for snap in (before, after):
        if snap.agent is not None and snap.agent != agent:
            return f"series of agent {snap.agent!r} at {agent!r}'s metrics URL"
    checked = rates(before, after)
    if isinstance(checked, Problem) and checked.reason is not Reason.NO_TASKS:
        return str(checked)

    def d(name: str) -> float:
        return (after.values.get(name) or 0.0) - (before.values.get(name) or 0.0)

    if isinstance(checked, Problem):  # no task finished: a valid, empty window
        buckets = tuple((le, 0.0) for le, _ in after.buckets)
    else:
        buckets = tuple(
            (le, a - b) for (le, b), (_, a) in zip(before.buckets, after.buckets, strict=True)
        )
    auth_before, auth_after = before.values.get(AUTH_ERRORS), after.values.get(AUTH_ERRORS)
    auth = None if auth_before is None or auth_after is None else auth_after - auth_before
    return AgentWindow(
        agent=agent,
        start=before.at,
        end=after.at,
        tasks=d(METRIC_TASKS),
        errors=d(METRIC_TASK_ERRORS),
        tokens_in=d(METRIC_TOKENS_IN),
        tokens_out=d(METRIC_TOKENS_OUT),
        cost=d(METRIC_COST),
        buckets=buckets,
        last_sample_at=after.at,
        auth_errors=auth if auth is None or auth >= 0 else None,
    )
