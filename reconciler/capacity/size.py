"""A tier's observed load -> the agents it needs, with and without headroom (pure).

N = ceil(λ·s / (c·U)): λ arrivals per second, s service time in seconds, c the
tasks one agent runs at once, U the target utilisation of its class. The tail
rule: when the p95 service time is more than `heavy_tail_ratio` (default 2) x the
mean, s is the p95, and the row says so. Rounding: λ and s are estimates far
coarser than 0.5%, so a need within 0.5% above a whole number is that number
(λ 4.2/s x s 3.1 s / 0.65 = 20.03 -> 20 agents; 26.04 with 30% headroom -> 26).
"""

from __future__ import annotations

import math
from typing import Final

from reconciler.capacity.observe import Observed
from reconciler.capacity.report import TierCapacity
from reconciler.model.fleet import Capacity, TierClass

ROUNDING_SLACK: Final = 0.005


def agents_needed(lam: float, service_s: float, concurrency: int, utilisation: float) -> int:
    """ceil(λ·s / (c·U)), a need within 0.5% above a whole number being that number."""
    if lam <= 0 or service_s <= 0:
        return 0
    exact = lam * service_s / (concurrency * utilisation)
    return max(1, math.ceil(exact * (1 - ROUNDING_SLACK)))


def verdict(running: int, needed: int, with_headroom: int, headroom: float) -> str:
    """The agents the repo runs against the need, in words."""
    pct = f"{headroom * 100:g}%"
    if running < needed:
        return f"short by {needed - running} ({with_headroom - running} with {pct} headroom)"
    if running < with_headroom:
        return f"enough without headroom; short by {with_headroom - running} with {pct} headroom"
    if running > with_headroom:
        return f"over-provisioned by {running - with_headroom} (keeping {pct} headroom)"
    return f"right-sized (with {pct} headroom)"


def size(
    tier: str,
    observed: Observed,
    *,
    concurrency: int,
    running: int,
    policy: Capacity,
    notes: tuple[str, ...] = (),
) -> TierCapacity:
    """The capacity row of one tier."""
    cls: TierClass = policy.tiers.get(tier, "latency-sensitive")
    u = policy.target_utilisation.get(cls, 0.65 if cls == "latency-sensitive" else 0.85)
    mean, p95 = observed.service_mean_s, observed.service_p95_s
    heavy = mean is not None and p95 is not None and p95 > policy.heavy_tail_ratio * mean
    used = p95 if heavy else mean
    rule = (
        f"p95 service time {p95:.3g}s > {policy.heavy_tail_ratio:g} x mean {mean:.3g}s: "
        "heavy tail, sized on p95"
        if heavy and p95 is not None and mean is not None
        else f"p95 <= {policy.heavy_tail_ratio:g} x mean: sized on the mean service time"
    )
    out = list(notes)
    if used is None:
        out.append("no task finished in the window: no service time, nothing sized")
        needed = with_headroom = 0
    else:
        needed = agents_needed(observed.lambda_per_s, used, concurrency, u)
        with_headroom = agents_needed(
            observed.lambda_per_s * (1 + policy.headroom), used, concurrency, u
        )
    observed_u = (
        observed.lambda_per_s * mean / (concurrency * running)
        if mean is not None and running > 0
        else None
    )
    return TierCapacity(
        tier=tier,
        tier_class=cls,
        agents_running=running,
        concurrency=concurrency,
        window_s=round(observed.span_s, 3),
        arrivals_per_s=observed.lambda_per_s,
        peak_arrivals_per_s=observed.peak_per_s,
        service_time_mean_s=mean,
        service_time_p95_s=p95,
        heavy_tail=heavy,
        service_time_used_s=used,
        service_rule=rule,
        target_utilisation=u,
        observed_utilisation=observed_u,
        headroom=policy.headroom,
        agents_needed=needed,
        agents_needed_with_headroom=with_headroom,
        verdict=verdict(running, needed, with_headroom, policy.headroom) if used else "unknown",
        notes=out,
    )
