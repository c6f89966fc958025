"""Cost estimates in dollars: fleet.yaml's price table times each agent's traffic (pure).

An agent's cost per day is tasks/day x (input tokens/task x input price + output
tokens/task x output price), prices in USD per million tokens from fleet.yaml
`prices`. The traffic (`Traffic`) comes from the edge: live metrics of each box
over a stated window, a Prometheus server, usage.yaml per tier, or a measured
USD/day (`--costs`); every figure carries its source and window, and whether the
prices are example prices. A model change is re-priced at the same traffic and
tokens per task; other cost-impacting fields (token limits, concurrency) change
the traffic itself, so they are named as not estimated, never guessed. A model
the table lacks is named, with the file to add it to. A month is 730 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from reconciler.diff.model import AgentStatus, CostEstimate, CostTotal, FieldChange
from reconciler.model.fleet import ModelPrice, Prices, UsageFile

MONTH_DAYS: Final = 730 / 24  # a month of 730 hours, as cloud bills count it
MODEL_FIELD: Final = ("model",)  # the payload field naming the model the price table prices
PRICES_HOME: Final = "fleet.yaml `prices.models`"


@dataclass(frozen=True, slots=True)
class Traffic:
    """One agent's traffic, and where and over what window it was measured."""

    source: str
    tasks_per_day: float | None = None
    tokens_in_per_task: float | None = None
    tokens_out_per_task: float | None = None
    usd_per_day: float | None = None  # measured spend (cost_usd_total rate, or --costs)

    @property
    def has_tokens(self) -> bool:
        return None not in (self.tasks_per_day, self.tokens_in_per_task, self.tokens_out_per_task)


def prices_label(prices: Prices) -> str:
    """'example prices dated 2026-11-01' / 'fleet.yaml prices (undated)'."""
    what = "example prices" if prices.example else "fleet.yaml prices"
    return f"{what} dated {prices.dated}" if prices.dated else f"{what} (undated)"


def cost_per_day(traffic: Traffic, price: ModelPrice) -> float | None:
    """USD per day of `traffic` at `price`; None without tasks and tokens per task."""
    if not traffic.has_tokens:
        return None
    assert traffic.tasks_per_day is not None  # noqa: S101 (has_tokens)
    assert traffic.tokens_in_per_task is not None  # noqa: S101
    assert traffic.tokens_out_per_task is not None  # noqa: S101
    per_task = (
        traffic.tokens_in_per_task * price.usd_per_mtok_in
        + traffic.tokens_out_per_task * price.usd_per_mtok_out
    ) / 1e6
    return traffic.tasks_per_day * per_task


def price_ratio(prices: Prices, old: object, new: object) -> float | None:
    """New/old price per token of two model names (mean of input and output), if both priced."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return None
    was, now = prices.models.get(old), prices.models.get(new)
    if was is None or now is None or not (was.usd_per_mtok_in and was.usd_per_mtok_out):
        return None
    return (
        now.usd_per_mtok_in / was.usd_per_mtok_in + now.usd_per_mtok_out / was.usd_per_mtok_out
    ) / 2


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _month(x: float | None) -> float | None:
    return None if x is None else x * MONTH_DAYS


def _figures(now: float | None, new: float | None, **kw: object) -> dict[str, object]:
    delta = None if now is None or new is None else new - now
    return {
        "now_per_day": now,
        "new_per_day": new,
        "delta_per_day": delta,
        "now_per_month": _month(now),
        "new_per_month": _month(new),
        "delta_per_month": _month(delta),
        **kw,
    }


def _model(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _spend(traffic: Traffic | None, prices: Prices | None, model: str | None) -> float | None:
    """USD/day of an agent on `model`: tokens x the table, else its measured spend."""
    if traffic is None:
        return None
    if prices is not None and model is not None and model in prices.models:
        figure = cost_per_day(traffic, prices.models[model])
        if figure is not None:
            return figure
    return traffic.usd_per_day


def estimate(
    status: AgentStatus,
    changes: Sequence[FieldChange],
    traffic: Traffic | None = None,
    prices: Prices | None = None,
    *,
    old_model: object = None,
    new_model: object = None,
) -> CostEstimate | None:
    """The cost estimate of one agent's change set; None when nothing cost-impacting changes.

    `old_model`/`new_model` are the payload's `model` on each side (the change list holds
    it only when it changes); `traffic` is the agent's measured or expected traffic.
    """
    was, now = _model(old_model), _model(new_model)
    table = prices_label(prices) if prices is not None else None
    source = traffic.source if traffic is not None else None
    sides = (
        (was,)
        if status is AgentStatus.REMOVED
        else (now,)
        if status is AgentStatus.ADDED
        else (was, now)
    )
    relevant = {m for m in sides if m is not None}
    missing = tuple(sorted(m for m in relevant if prices is not None and m not in prices.models))
    missing_note = (
        f"model {', '.join(missing)} not in the price table: add it to {PRICES_HOME}"
        if missing
        else ""
    )
    no_table = "no price table: add `prices:` to fleet.yaml (docs/cost.md)"
    common = {"source": source, "prices": table, "missing_models": missing}

    if status is AgentStatus.REMOVED:
        spend = _spend(traffic, prices, was)
        if spend is None:
            why = missing_note or ("no traffic figure" if traffic is None else "no cost figure")
            return CostEstimate(note=f"agent removed: saves its cost; {why}", **common)
        return CostEstimate(
            **_figures(spend, 0.0, **common),
            note=f"agent removed: saves its {_money(spend)}/day",
        )
    if status is AgentStatus.ADDED:
        if traffic is None or not traffic.has_tokens:
            return CostEstimate(note="new agent: no cost history to estimate from", **common)
        if prices is None or now is None or now not in prices.models:
            return CostEstimate(note=f"new agent: {missing_note or no_table}", **common)
        cost = cost_per_day(traffic, prices.models[now])
        return CostEstimate(
            **_figures(0.0, cost, **common), note=f"new agent on {now} at its tier's usage"
        )

    costly = [c for c in changes if c.cost_impacting]
    if not costly:
        return None
    model_change = next((c for c in costly if c.path == MODEL_FIELD and c.kind == "changed"), None)
    others = [c.dotted for c in costly if c is not model_change]
    not_estimated = (
        f"{', '.join(others)} not estimated: it changes tokens per task, which only a "
        "measurement after the change shows"
        if others
        else ""
    )
    if model_change is not None:
        was, now = _model(model_change.old), _model(model_change.new)
    if prices is None:
        return CostEstimate(note="; ".join(x for x in (no_table, not_estimated) if x), **common)
    ratio = price_ratio(prices, was, now) if model_change is not None else None
    spend_now = _spend(traffic, prices, was)
    if model_change is None:
        new = None  # only traffic-changing fields: no honest figure
    elif traffic is not None and traffic.has_tokens and now in prices.models and not missing:
        new = cost_per_day(traffic, prices.models[now])
    elif spend_now is not None and ratio is not None:
        new = spend_now * ratio
    else:
        new = None
    if new is None:
        why = (
            missing_note
            or not_estimated
            or ("no traffic figure" if traffic is None else "the traffic figure has no tokens")
        )
        if model_change is not None and ratio is not None and not missing_note:
            why = f"price per token x{ratio:.2f}; {why}"
        return CostEstimate(
            ratio=ratio, now_per_day=spend_now, now_per_month=_month(spend_now), note=why, **common
        )
    assert spend_now is not None or new is not None  # noqa: S101
    how = f"{was} {_money(spend_now or 0.0)}/day → {now} {_money(new)}/day"
    if ratio is not None:
        how += f" (price per token x{ratio:.2f})"
    if not_estimated:
        how += f"; {not_estimated}"
    return CostEstimate(
        ratio=ratio,
        **_figures(spend_now, new, **common),
        caveat=not_estimated or None,
        note=how,
    )


def total(costs: Iterable[CostEstimate | None], *, cost_impacting: int = 0) -> CostTotal | None:
    """The sum of the estimates that have a figure; None when none has one.

    `cost_impacting`: how many agents the costs are for that should have a figure (those
    without one are counted as `without`).
    """
    with_figure = [c for c in costs if c is not None and c.delta_per_day is not None]
    if not with_figure:
        return None
    now = sum(c.now_per_day or 0.0 for c in with_figure)
    new = sum(c.new_per_day or 0.0 for c in with_figure)
    return CostTotal(
        now_per_day=now,
        new_per_day=new,
        delta_per_day=new - now,
        now_per_month=now * MONTH_DAYS,
        new_per_month=new * MONTH_DAYS,
        delta_per_month=(new - now) * MONTH_DAYS,
        estimated=len(with_figure),
        without=max(0, cost_impacting - len(with_figure)),
        sources=tuple(sorted({c.source for c in with_figure if c.source})),
        prices=next((c.prices for c in with_figure if c.prices), None),
        missing_models=(),
    )


def fleet_total(costs: Sequence[CostEstimate | None]) -> CostTotal | None:
    """The whole diff's total: `total` of every estimate, with every missing model named."""
    costed = [c for c in costs if c is not None]
    missing = tuple(sorted({m for c in costed for m in c.missing_models}))
    base = total(costed, cost_impacting=len(costed))
    if base is None:
        return None
    return base.model_copy(update={"missing_models": missing})


def usage_traffic(usage: UsageFile, tiers: Mapping[str, str | None]) -> dict[str, Traffic]:
    """Each agent's expected traffic from usage.yaml (per agent of its tier), where given."""
    window = f", {usage.window}" if usage.window else ""
    out = {}
    for agent, tier in tiers.items():
        u = usage.tiers.get(tier) if tier is not None else None
        if u is not None:
            out[agent] = Traffic(
                source=f"usage.yaml tier {tier}{window}",
                tasks_per_day=u.tasks_per_day,
                tokens_in_per_task=u.input_tokens_per_task,
                tokens_out_per_task=u.output_tokens_per_task,
            )
    return out
