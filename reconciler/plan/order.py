"""The rollout order: canaries spread across shards and tiers, the same order for the same input.

Agents are grouped by (shard, tier); each group is sorted by name. The groups
are put in a *spread order* once: each next group is the one whose shard and
tier have been picked least so far (ties by shard, then tier). Agents are then
dealt round-robin over the groups in that order, skipping emptied groups. So
with shards {ap, eu, us} and tiers {batch, fast, smart}, the first three
agents come from (ap, batch), (eu, fast), (us, smart): wave 1 and wave 2 meet
different shards and tiers. Cost: O(g^2 + n) for g groups and n agents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class Placed(Protocol):
    """Anything with an agent name, a tier and a shard."""

    @property
    def agent(self) -> str: ...

    @property
    def tier(self) -> str: ...

    @property
    def shard(self) -> str: ...


def spread_groups(groups: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(shard, tier) groups in spread order: least-used shard and tier first, ties by name."""
    left = sorted(set(groups))
    shards: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    out: list[tuple[str, str]] = []
    while left:
        best = min(left, key=lambda g: (shards[g[0]] + tiers[g[1]], g))
        left.remove(best)
        out.append(best)
        shards[best[0]] += 1
        tiers[best[1]] += 1
    return out


T = TypeVar("T", bound=Placed)


def rollout_order(items: Sequence[T]) -> list[T]:
    """Items in rollout order: round-robin over (shard, tier) groups in spread order."""
    by_group: dict[tuple[str, str], list[T]] = {}
    for item in items:
        by_group.setdefault((item.shard, item.tier), []).append(item)
    queues = [sorted(by_group[g], key=lambda i: i.agent) for g in spread_groups(by_group)]
    out: list[T] = []
    depth = 0
    while queues:
        out.extend(q[depth] for q in queues)
        depth += 1
        queues = [q for q in queues if depth < len(q)]
    return out
