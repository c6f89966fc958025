"""The latency gate's shown figures compare like with like.

Two canary agents of different tiers, each exactly as fast as its own baseline: the gate
passes, and the canary figure it shows is not above the threshold it shows. (The figure
was the p95 of all canary tasks merged: the slow tier's tail made it 2-3x every per-tier
p95, so a passing gate printed "canary 23 > threshold 16" in the rotation journeys.)
"""

from __future__ import annotations

from reconciler.gates import AgentInfo, AgentWindow, Outcome, choose_pools, evaluate
from reconciler.model.fleet import Gate

INF = float("inf")
FAST = ((0.5, 400.0), (1.0, 950.0), (2.0, 1000.0), (INF, 1000.0))  # p95 ~1.0 s
SLOW = ((10.0, 400.0), (20.0, 950.0), (40.0, 1000.0), (INF, 1000.0))  # p95 ~20 s


def _w(agent: str, buckets: tuple[tuple[float, float], ...]) -> AgentWindow:
    return AgentWindow(agent, 0.0, 600.0, 1000.0, 0.0, 1.0, 1.0, 1.0, buckets)


def test_two_tiers_at_their_own_baselines_pass_and_show_canary_below_threshold() -> None:
    gate = Gate(name="latency", metric="latency_p95", max_ratio=1.5, min_samples=100)
    canary = [_w("fast-1", FAST), _w("smart-1", SLOW)]
    unchanged = {"fast-2": _w("fast-2", FAST), "smart-2": _w("smart-2", SLOW)}
    info = {
        "fast-1": AgentInfo("fast-1", "fast", "us-east", "a"),
        "fast-2": AgentInfo("fast-2", "fast", "us-east", "a"),
        "smart-1": AgentInfo("smart-1", "smart", "us-east", "b"),
        "smart-2": AgentInfo("smart-2", "smart", "us-east", "b"),
    }
    pools = choose_pools(["fast-1", "smart-1"], info, unchanged, {}, gate.min_samples)
    v = evaluate(gate, canary, pools)
    assert v.outcome is Outcome.PASS, v.detail()
    assert v.canary is not None and v.threshold is not None and v.baseline is not None
    assert v.canary <= v.threshold, v.detail()
    assert abs(v.canary - v.baseline) < 0.05 * v.baseline, v.detail()
