"""The capacity report: its JSON model (schemas/capacity.schema.json), text and markdown (pure)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

CAPACITY_SCHEMA_VERSION = 1


class TierCapacity(BaseModel):
    """One tier: the load seen, and the agents it needs."""

    tier: str
    tier_class: Literal["latency-sensitive", "batch"]
    agents_running: int = Field(description="Agents of the tier in the repo.")
    concurrency: int = Field(description="c: tasks one agent runs at once (its config).")
    window_s: float = Field(description="Seconds of data the figures are from.")
    arrivals_per_s: float = Field(description="λ: mean arrivals per second over the window.")
    peak_arrivals_per_s: float = Field(description="p95 of the arrival rate over the window.")
    service_time_mean_s: float | None
    service_time_p95_s: float | None
    heavy_tail: bool = Field(description="p95 > heavy_tail_ratio x mean: N uses the p95.")
    service_time_used_s: float | None = Field(description="s in N = ceil(λ·s / (c·U)).")
    service_rule: str
    target_utilisation: float = Field(description="U of the tier's class.")
    observed_utilisation: float | None = Field(description="λ x mean s / (c x agents running).")
    headroom: float
    agents_needed: int
    agents_needed_with_headroom: int
    verdict: str
    notes: list[str] = Field(default_factory=list)


class CapacityReport(BaseModel):
    """`reconcile capacity --format json`."""

    schema_version: int = CAPACITY_SCHEMA_VERSION
    fleet_id: str
    source: Literal["scrape", "prometheus"]
    window_s: float
    tiers: list[TierCapacity]


def _f(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:.3g}{unit}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


COLUMNS = ("tier", "class", "running", "c", "λ/s", "peak/s", "s mean", "s p95", "U target",
           "U seen", "N", "N+headroom", "verdict")  # fmt: skip


def _cells(t: TierCapacity) -> tuple[str, ...]:
    return (
        t.tier,
        t.tier_class,
        str(t.agents_running),
        str(t.concurrency),
        _f(t.arrivals_per_s),
        _f(t.peak_arrivals_per_s),
        _f(t.service_time_mean_s, "s"),
        _f(t.service_time_p95_s, "s") + (" (heavy tail)" if t.heavy_tail else ""),
        _pct(t.target_utilisation),
        _pct(t.observed_utilisation),
        str(t.agents_needed),
        str(t.agents_needed_with_headroom),
        t.verdict,
    )


def to_json(report: CapacityReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2)


def to_text(report: CapacityReport) -> str:
    rows = [COLUMNS, *(_cells(t) for t in report.tiers)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]  # fmt: skip
    lines.append("")
    lines.append(
        f"{report.fleet_id}: {report.source}, {report.window_s:g}s window; "
        "N = ceil(λ·s / (c·U)); U seen = λ·mean s / (c·running)."
    )
    for t in report.tiers:
        lines.append(f"{t.tier}: {t.service_rule}")
        lines.extend(f"{t.tier}: {n}" for n in t.notes)
    return "\n".join(lines) + "\n"


def to_markdown(report: CapacityReport) -> str:
    def row(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [
        f"## Capacity of {report.fleet_id}",
        "",
        f"Source: {report.source}, window {report.window_s:g}s. N = ceil(λ·s / (c·U)).",
        "",
        row(COLUMNS),
        row(tuple("---" for _ in COLUMNS)),
        *(row(_cells(t)) for t in report.tiers),
        "",
    ]
    for t in report.tiers:
        lines.append(f"- **{t.tier}**: {t.service_rule}")
        lines.extend(f"- **{t.tier}**: {n}" for n in t.notes)
    return "\n".join(lines) + "\n"
