"""Inline SVG charts for the HTML reports (pure: numbers in, SVG text out; no network at view).

`line_chart` draws series of (x, y) points (a polyline and a dot per point, so a
one-point series still shows) and horizontal reference lines (a gate's threshold),
with the axes' ranges labelled. Every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

Point = tuple[float, float]
PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
THRESHOLD_COLOUR = "#7f7f7f"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: tuple[Point, ...]
    colour: str


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if math.isclose(lo, hi):
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    references: Mapping[str, float] | None = None,
    x_label: str = "seconds",
    width: int = 540,
    height: int = 220,
) -> str:
    """An SVG line chart; a note instead of axes when there is no point at all."""
    refs = dict(references or {})
    left, right, top, bottom = 56, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfbfd" stroke="#ccc"/>'
        f'<text x="{left}" y="18" font-size="13" font-family="sans-serif" '
        f'font-weight="bold">{escape(title)}</text>'
    )
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points] + list(refs.values())
    if not xs:
        return head + (
            f'<text x="{left}" y="{top + ph / 2}" font-size="12" font-family="sans-serif">'
            "no samples recorded</text></svg>"
        )
    x0, x1 = _span(xs)
    y0, y1 = _span(ys)
    if min(ys) >= 0:
        y0 = 0.0  # rates, latencies, costs: from zero

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [
        head,
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for value, anchor, label in ((y0, "end", _fmt(y0)), (y1, "end", _fmt(y1))):
        parts.append(
            f'<text x="{left - 4}" y="{py(value) + 4:.1f}" font-size="10" text-anchor="{anchor}" '
            f'font-family="sans-serif">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 18}" font-size="10" font-family="sans-serif">'
        f"{escape(_fmt(x0))}</text>"
        f'<text x="{left + pw}" y="{height - 18}" font-size="10" text-anchor="end" '
        f'font-family="sans-serif">{escape(_fmt(x1))} {escape(x_label)}</text>'
    )
    for name, value in refs.items():
        y = py(value)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{left + pw - 4}" y="{y - 4:.1f}" font-size="10" text-anchor="end" '
            f'font-family="sans-serif" fill="{THRESHOLD_COLOUR}">'
            f"{escape(name)} {escape(_fmt(value))}</text>"
        )
    legend_x = left + 8
    for s in series:
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        if len(s.points) > 1:
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{s.colour}" stroke-width="2.5"/>'
            )
        parts.extend(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{s.colour}"/>'
            for x, y in s.points
        )
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{s.colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}" font-size="10" '
            f'font-family="sans-serif">{escape(s.name)}</text>'
        )
        legend_x += 20 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


def timeline_strip(events: Sequence[tuple[float, str]], *, width: int = 1100) -> str:
    """The rollout's events on one time axis (seconds from the start), finish marked."""
    height, left, right = 70, 20, 20
    end = max((t for t, _ in events), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline">',
        f'<line x1="{left}" x2="{width - right}" y1="35" y2="35" stroke="#333" stroke-width="2"/>',
    ]
    for t, kind in events:
        x = left + t / end * (width - left - right)
        colour = (
            "#d62728"
            if "fail" in kind or "rollback" in kind
            else ("#2ca02c" if kind == "finish" else "#1f77b4")
        )
        parts.append(
            f'<circle cx="{x:.1f}" cy="35" r="5" fill="{colour}"><title>'
            f"{escape(kind)} at {t:.1f}s</title></circle>"
        )
    parts.append(
        f'<text x="{left}" y="62" font-size="10" font-family="sans-serif">0 s</text>'
        f'<text x="{width - right}" y="62" font-size="10" text-anchor="end" '
        f'font-family="sans-serif">{end:.1f} s (finish)</text></svg>'
    )
    return "".join(parts)
