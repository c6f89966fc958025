"""Small builders of planning input for the plan, rollout and journal tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from reconciler.model.fleet import Gate, Rollout
from reconciler.plan import Change, PathChange, Plan, make_plan

SHARDS = ("us-east", "eu-west", "ap-south")
TIERS = ("fast", "smart", "batch")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def change(
    agent: str,
    *,
    shard: str = "us-east",
    tier: str = "fast",
    paths: Sequence[PathChange] = (PathChange(path=("prompt",)),),
    desired: str = "new",
    live: str | None = "old",
    stamp: str | None = "old",
    revision: str | None = "rev-1",
    history: Sequence[str] = (),
) -> Change:
    """A changing agent; shas are made from the short words given."""
    return Change(
        agent=agent,
        tier=tier,
        shard=shard,
        paths=tuple(paths),
        desired_sha=sha(desired),
        live_sha=None if live is None else sha(f"{live}-{agent}" if live == "old" else live),
        stamp_sha=None if stamp is None else sha(f"{stamp}-{agent}" if stamp == "old" else stamp),
        stamp_revision=revision if stamp is not None else None,
        history_shas=tuple(sha(h) for h in history),
    )


def fleet_changes(n: int) -> list[Change]:
    """`n` changing agents spread over three shards and three tiers."""
    return [
        change(f"agent-{i:04d}", shard=SHARDS[i % 3], tier=TIERS[(i // 3) % 3]) for i in range(n)
    ]


GATES = (Gate(name="task-errors", metric="error_rate", max_ratio=1.5),)


def plan_of(
    changes: Sequence[Change],
    *,
    waves: Sequence[int | str] = (1, 5, "25%", "100%"),
    budget: int | str = 0,
    soak_s: float = 600,
    revision: str = "rev-2",
) -> Plan:
    return make_plan(
        changes,
        fleet_id="acme-support",
        target_revision=revision,
        policy=Rollout(waves=list(waves), soak_s=soak_s, failure_budget=budget),
        gates=GATES,
    )
