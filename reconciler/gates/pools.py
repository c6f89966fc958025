"""Pools: which windows a canary agent is compared with (its baseline). Pure.

A pool is a group of baseline windows with a `PoolKey` that says what its
members share. For each canary agent `choose_pools` takes the first kind in
`POOL_KINDS` that has `min_samples` tasks: unchanged agents of the same shard,
tier and config; of the same tier and config; the agent itself before the
change (its window from an earlier wave); of the same shard and tier; of the
same tier. A pool is never drawn from another tier: tokens and cost differ by
tier. Canary agents with the same key share one pool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from reconciler.gates.windows import AgentInfo, AgentWindow

SAME_SHARD_TIER_CONFIG: Final = "same shard, tier and config"
SAME_TIER_CONFIG: Final = "same tier and config"
BEFORE_THE_CHANGE: Final = "before the change"
SAME_SHARD_TIER: Final = "same shard and tier"
SAME_TIER: Final = "same tier"
SPREAD: Final = "spread"  # like unchanged agents grouped to see how much agents differ
POOL_KINDS: Final = (
    SAME_SHARD_TIER_CONFIG,
    SAME_TIER_CONFIG,
    BEFORE_THE_CHANGE,
    SAME_SHARD_TIER,
    SAME_TIER,
)  # best match first


class PoolKey(NamedTuple):
    """What a pool's members share: its kind and the fields that kind matches on.

    Fields a kind does not match on stay empty; a "before the change" pool
    names its one agent. Two pools are the same pool when their keys are equal.
    """

    kind: str
    shard: str = ""
    tier: str = ""
    cohort: str = ""
    agent: str = ""


class MemberKey(NamedTuple):
    """One baseline window: an agent, now or before the change (two distinct samples)."""

    before_the_change: bool
    agent: str


@dataclass(frozen=True, slots=True)
class Pool:
    """The baseline one or more canary agents are compared with."""

    key: PoolKey
    members: tuple[AgentWindow, ...]

    @property
    def kind(self) -> str:
        """In words: "same shard and tier", "same tier", "before the change", ..."""
        return self.key.kind

    @property
    def tasks(self) -> float:
        return sum(m.tasks for m in self.members)

    @property
    def errors(self) -> float:
        return sum(m.errors for m in self.members)

    @property
    def error_rate(self) -> float:
        """Errors per task (0 without tasks)."""
        return self.errors / self.tasks if self.tasks else 0.0

    @property
    def smoothed_error_rate(self) -> float:
        """(errors + 0.5) / (tasks + 1): never 0, so a clean baseline still predicts errors."""
        return (self.errors + 0.5) / (self.tasks + 1.0)

    def mean_per_task(self, metric: str) -> float:
        """The pool's per-task mean of a mean metric (NaN without tasks)."""
        return sum(m.total(metric) for m in self.members) / self.tasks if self.tasks else math.nan

    def member_key(self, member: AgentWindow) -> MemberKey:
        return MemberKey(self.kind == BEFORE_THE_CHANGE, member.agent)


def pool_keys(where: AgentInfo) -> tuple[PoolKey, ...]:
    """The pool keys of an agent, best match first (in the order of POOL_KINDS)."""
    return (
        PoolKey(SAME_SHARD_TIER_CONFIG, shard=where.shard, tier=where.tier, cohort=where.cohort),
        PoolKey(SAME_TIER_CONFIG, tier=where.tier, cohort=where.cohort),
        PoolKey(BEFORE_THE_CHANGE, agent=where.name),
        PoolKey(SAME_SHARD_TIER, shard=where.shard, tier=where.tier),
        PoolKey(SAME_TIER, tier=where.tier),
    )


def choose_pools(
    canary: Iterable[str],
    info: Mapping[str, AgentInfo],
    unchanged: Mapping[str, AgentWindow],
    before: Mapping[str, AgentWindow],
    min_samples: int,
    mode: str = "auto",
) -> dict[str, Pool]:
    """Each canary agent's baseline pool; agents with none are left out.

    `mode`: "peers" (unchanged agents only), "before" (the agent before the
    change only) or "auto" (peers, else before).
    """
    if mode == "before":
        unchanged = {}
    if mode == "peers":
        before = {}
    peers = _peer_groups(info, unchanged)
    made: dict[PoolKey, Pool] = {}
    chosen: dict[str, Pool] = {}
    for name in canary:
        where = info.get(name)
        if where is None:
            continue
        pool = _first_pool(name, where, peers, before, min_samples, made)
        if pool is not None:
            chosen[name] = pool
    return chosen


def _peer_groups(
    info: Mapping[str, AgentInfo], unchanged: Mapping[str, AgentWindow]
) -> dict[PoolKey, list[AgentWindow]]:
    """Unchanged windows under every peer key of their agent (agents in name order)."""
    groups: dict[PoolKey, list[AgentWindow]] = {}
    for name in sorted(unchanged):
        where = info.get(name)
        if where is None:
            continue
        for key in pool_keys(where):
            if key.kind != BEFORE_THE_CHANGE:
                groups.setdefault(key, []).append(unchanged[name])
    return groups


def _first_pool(
    name: str,
    where: AgentInfo,
    peers: Mapping[PoolKey, list[AgentWindow]],
    before: Mapping[str, AgentWindow],
    min_samples: int,
    made: dict[PoolKey, Pool],
) -> Pool | None:
    """The best pool for one canary agent; `made` shares peer pools between agents."""
    for key in pool_keys(where):
        if key.kind == BEFORE_THE_CHANGE:
            if name in before:
                return Pool(key, (before[name],))
            continue
        members = peers.get(key, [])
        if sum(w.tasks for w in members) >= min_samples:
            return made.setdefault(key, Pool(key, tuple(members)))
    return None


def spread_pools(info: Mapping[str, AgentInfo], unchanged: Mapping[str, AgentWindow]) -> list[Pool]:
    """Unchanged agents grouped by shard, tier and config: how much like agents differ."""
    groups: dict[PoolKey, list[AgentWindow]] = {}
    for name in sorted(unchanged):
        where = info.get(name)
        if where is not None and unchanged[name].tasks > 0:
            key = PoolKey(SPREAD, shard=where.shard, tier=where.tier, cohort=where.cohort)
            groups.setdefault(key, []).append(unchanged[name])
    return [Pool(key, tuple(ws)) for key, ws in groups.items() if len(ws) >= 2]


def distinct_pools(pools: Iterable[Pool]) -> list[Pool]:
    """Each pool once (by key), in the order first seen."""
    seen: dict[PoolKey, Pool] = {}
    for pool in pools:
        seen.setdefault(pool.key, pool)
    return list(seen.values())


def baseline_members(pools: Iterable[Pool]) -> list[AgentWindow]:
    """Every baseline window of the pools, once each (by `MemberKey`), in the order first seen."""
    seen: dict[MemberKey, AgentWindow] = {}
    for pool in distinct_pools(pools):
        for member in pool.members:
            seen.setdefault(pool.member_key(member), member)
    return list(seen.values())
