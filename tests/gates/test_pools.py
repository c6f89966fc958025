"""Baseline pools are keyed by what their members share (a PoolKey), never by object identity."""

from __future__ import annotations

from reconciler.gates import AgentInfo, AgentWindow, PoolKey, choose_pools
from reconciler.gates.pools import (
    BEFORE_THE_CHANGE,
    SAME_SHARD_TIER_CONFIG,
    SAME_TIER,
    baseline_members,
    distinct_pools,
)


def window(agent: str, tasks: float = 100.0) -> AgentWindow:
    return AgentWindow(agent, 0.0, 600.0, tasks, 1.0, 10.0, 5.0, 0.1)


INFO = {
    "c1": AgentInfo("c1", "fast", "east", "sha"),
    "c2": AgentInfo("c2", "fast", "east", "sha"),
    "c3": AgentInfo("c3", "fast", "west", "other"),
    "u1": AgentInfo("u1", "fast", "east", "sha"),
    "u2": AgentInfo("u2", "fast", "east", "sha"),
}
UNCHANGED = {"u1": window("u1"), "u2": window("u2")}


def test_canary_agents_with_the_same_key_share_one_pool() -> None:
    """c1 and c2 match the same shard, tier and config: one pool, counted once."""
    pools = choose_pools(["c1", "c2"], INFO, UNCHANGED, {}, min_samples=150)
    assert pools["c1"].key == pools["c2"].key
    assert pools["c1"].key == PoolKey(SAME_SHARD_TIER_CONFIG, "east", "fast", "sha")
    assert len(distinct_pools(pools.values())) == 1
    assert [m.agent for m in baseline_members(pools.values())] == ["u1", "u2"]


def test_a_pool_key_names_only_what_its_kind_matches_on() -> None:
    """c3 (another shard and config) falls back to the same tier; its agent is before the change."""
    before = {"c1": window("c1", tasks=500.0)}
    pools = choose_pools(["c1", "c3"], INFO, UNCHANGED, before, min_samples=150, mode="auto")
    assert pools["c3"].key == PoolKey(SAME_TIER, tier="fast")
    only_before = choose_pools(["c1"], INFO, UNCHANGED, before, min_samples=150, mode="before")
    assert only_before["c1"].key == PoolKey(BEFORE_THE_CHANGE, agent="c1")
    assert only_before["c1"].kind == "before the change"


def test_an_agent_now_and_before_the_change_are_two_baseline_samples() -> None:
    """The same agent's window before the change and its unchanged window both count."""
    peers = choose_pools(["c1"], INFO, UNCHANGED, {}, min_samples=150)
    before = choose_pools(["u1"], INFO, {}, {"u1": window("u1")}, min_samples=1, mode="before")
    members = baseline_members([*peers.values(), *before.values()])
    assert [m.agent for m in members] == ["u1", "u2", "u1"]
