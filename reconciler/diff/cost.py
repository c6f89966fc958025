"""Cost estimates for cost-impacting changes, honest about what cannot be estimated.

reconciler does not know what a payload means, so it estimates only what a
price table can support: a cost-impacting field whose old and new values are
both model names priced below scales today's cost by the price ratio. Any
other cost-impacting change (token limits, concurrency, budgets) depends on
traffic, so the estimate says so and gives no figure. Today's cost per agent
comes from metrics when the caller has them; without it, only the ratio is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from reconciler.diff.model import AgentStatus, CostEstimate, FieldChange

# List prices in USD per million tokens (input, output), as published by Anthropic.
# A model missing here (e.g. a name the vendor never priced publicly) gives no estimate.
MODEL_PRICES: Final[dict[str, tuple[float, float]]] = {
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-1": (15.0, 75.0),
}


def price_ratio(old: object, new: object) -> float | None:
    """New/old price per token of two model names (mean of input and output), if both priced."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return None
    if old not in MODEL_PRICES or new not in MODEL_PRICES:
        return None
    (old_in, old_out), (new_in, new_out) = MODEL_PRICES[old], MODEL_PRICES[new]
    return (new_in / old_in + new_out / old_out) / 2


def _money(x: float) -> str:
    return f"${x:,.2f}"


def estimate(
    status: AgentStatus, changes: Sequence[FieldChange], now_per_day: float | None
) -> CostEstimate | None:
    """The cost estimate of one agent's change set; None when nothing cost-impacting changes."""
    if status is AgentStatus.REMOVED:
        if now_per_day is None:
            return CostEstimate(note="agent removed: saves its cost; no cost figure measured")
        return CostEstimate(
            now_per_day=now_per_day,
            delta_per_day=-now_per_day,
            note=f"agent removed: saves its {_money(now_per_day)}/day",
        )
    if status is AgentStatus.ADDED:
        return CostEstimate(note="new agent: no cost history to estimate from")
    costly = [c for c in changes if c.cost_impacting]
    if not costly:
        return None
    ratio = 1.0
    unknown: list[str] = []
    for change in costly:
        r = price_ratio(change.old, change.new) if change.kind == "changed" else None
        if r is None:
            unknown.append(change.dotted)
        else:
            ratio *= r
    priced = len(unknown) < len(costly)
    if unknown:
        note = (
            f"no estimate for {', '.join(unknown)}: its cost depends on traffic, "
            "not on a price table"
        )
        if priced:
            note = f"price per token x{ratio:.2f}; {note}"
        return CostEstimate(ratio=ratio if priced else None, now_per_day=now_per_day, note=note)
    if now_per_day is None:
        return CostEstimate(
            ratio=ratio, note=f"price per token x{ratio:.2f}; no cost figure measured"
        )
    delta = now_per_day * (ratio - 1)
    return CostEstimate(
        ratio=ratio,
        now_per_day=now_per_day,
        delta_per_day=delta,
        note=f"price per token x{ratio:.2f} on {_money(now_per_day)}/day now",
    )
