"""Judging each agent from what its box says now (pure; the clock and I/O live elsewhere).

Red is "needs a human now": unreachable, unknown (an unreadable stamp),
refused, dead, stale heartbeat, stalled (alive with a queue and zero
throughput), or an error rate over the red limit. Yellow is "alive but
degrading": a missed heartbeat, error rate or p95 latency up, the loaded
config not the applied one, drift from a hand edit, an unmanaged box. An
idle agent (empty queue, no throughput) is green. Colors order like
gitops-engine's health codes: `worse()` picks the worst.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.model.live import BoxState, LiveBox


class Color(enum.StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worse(self, other: Color) -> Color:
        return self if self.rank >= other.rank else other


_RANK = {Color.GREEN: 0, Color.YELLOW: 1, Color.RED: 2}


@dataclass(frozen=True, slots=True)
class Limits:
    """Where yellow and red begin."""

    heartbeat_yellow_s: float = 10.0
    heartbeat_red_s: float = 60.0
    error_rate_yellow: float = 0.02
    error_rate_red: float = 0.10
    latency_vs_peers: float = 2.0  # p95 over this many times its tier's median p95
    min_samples: int = 10  # fewer tasks in the window say nothing about the error rate


def wilson_lower(errors: int, n: int, z: float = 2.576) -> float:
    """The lower bound of the Wilson score interval of errors/n (99% by default)."""
    if n <= 0:
        return 0.0
    p = errors / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


@dataclass(frozen=True, slots=True)
class Signals:
    """What the metrics said over the status window (None: not measured)."""

    tasks_per_s: float | None = None
    error_rate: float | None = None
    latency_p95_s: float | None = None
    samples: int = 0
    problem: str | None = None  # why the metrics could not be used


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One row of the matrix."""

    agent: str
    tier: str
    shard: str
    color: Color
    reasons: tuple[str, ...]
    state: BoxState
    agent_version: str | None = None
    revision: str | None = None
    heartbeat_age_s: float | None = None
    error_rate: float | None = None
    latency_p95_s: float | None = None
    queue_depth: int | None = None


def assess(
    agent: str,
    tier: str,
    shard: str,
    live: LiveBox,
    signals: Signals,
    limits: Limits = Limits(),
    desired_sha: str | None = None,
    peer_p95_s: float | None = None,
) -> AgentStatus:
    """One agent's color and every reason for it."""
    color = Color.GREEN
    reasons: list[str] = []

    def flag(c: Color, why: str) -> None:
        nonlocal color
        color = color.worse(c)
        reasons.append(why)

    # A box that answered with an unreadable stamp is unknown, not unreachable: its health
    # and metrics were read and are judged below.
    answered = live.state is not BoxState.UNKNOWN or live.stamp_error is not None
    # The row names the agent: a reason need not start with it again.
    why = (live.reason or "no reason given").removeprefix(f"{agent}: ")
    if live.state is BoxState.UNKNOWN:
        flag(Color.RED, f"{'unknown' if answered else 'unreachable'}: {why}")
    elif live.state is BoxState.FOREIGN:
        flag(Color.RED, f"foreign stamp: {why}")
    elif live.state is BoxState.UNMANAGED:
        flag(Color.YELLOW, "unmanaged: no stamp (the first apply adopts it)")
    if live.drifted:
        flag(Color.YELLOW, "drift: the config file differs from its stamp (hand edit?)")
    if desired_sha and live.config_sha256 and live.config_sha256 != desired_sha:
        reasons.append("out of date: the repo's head differs")
    h = live.health
    if answered and h is None:
        flag(Color.RED, f"no health answer: {live.health_error or 'unknown error'}")
    if h is not None:
        if not h.alive:
            flag(Color.RED, "dead: the agent reports alive=false")
        if h.heartbeat_age_s > limits.heartbeat_red_s:
            flag(Color.RED, f"stale heartbeat: {h.heartbeat_age_s:.0f}s")
        elif h.heartbeat_age_s > limits.heartbeat_yellow_s:
            flag(Color.YELLOW, f"missed heartbeat: {h.heartbeat_age_s:.0f}s")
        applied = live.stamp.config_sha256 if live.stamp else None
        if applied and h.loaded_sha256 and h.loaded_sha256 != applied:
            flag(Color.YELLOW, "loaded ≠ applied: the agent runs other config than was applied")
        if h.alive and h.queue_depth > 0 and signals.tasks_per_s == 0:
            flag(Color.RED, f"stalled: {h.queue_depth} queued, no task processed in the window")
    if signals.error_rate is not None and signals.samples >= limits.min_samples:
        # Judge the rate's 99% lower bound, so six tasks with one error are not "17% errors".
        low = wilson_lower(round(signals.error_rate * signals.samples), signals.samples)
        seen = f"error rate {signals.error_rate:.1%} of {signals.samples} tasks"
        if low > limits.error_rate_red:
            flag(Color.RED, seen)
        elif low > limits.error_rate_yellow:
            flag(Color.YELLOW, seen)
    p95 = signals.latency_p95_s
    if p95 is not None and peer_p95_s and p95 > limits.latency_vs_peers * peer_p95_s:
        flag(Color.YELLOW, f"p95 latency {p95:.1f}s, tier median {peer_p95_s:.1f}s")
    if signals.problem and answered:
        reasons.append(f"metrics: {signals.problem}")
    return AgentStatus(
        agent=agent,
        tier=tier,
        shard=shard,
        color=color,
        reasons=tuple(reasons),
        state=live.state,
        agent_version=h.agent_version if h else None,
        revision=live.stamp.revision if live.stamp else None,
        heartbeat_age_s=h.heartbeat_age_s if h else None,
        error_rate=signals.error_rate,
        latency_p95_s=signals.latency_p95_s,
        queue_depth=h.queue_depth if h else None,
    )


@dataclass(frozen=True)
class Summary:
    """Totals of the matrix: per color, per (shard, tier), and which builds run where."""

    colors: dict[Color, int]
    groups: dict[tuple[str, str], dict[Color, int]]
    versions: dict[str, list[str]] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> Color:
        worst = Color.GREEN
        for color, n in self.colors.items():
            if n:
                worst = worst.worse(color)
        return worst


def summarize(rows: Iterable[AgentStatus]) -> Summary:
    colors: Counter[Color] = Counter()
    groups: dict[tuple[str, str], Counter[Color]] = {}
    versions: dict[str, list[str]] = {}
    revisions: Counter[str] = Counter()
    for row in rows:
        colors[row.color] += 1
        groups.setdefault((row.shard, row.tier), Counter())[row.color] += 1
        versions.setdefault(row.agent_version or "unknown", []).append(row.agent)
        revisions[(row.revision or "none")[:12]] += 1
    return Summary(
        colors={c: colors.get(c, 0) for c in Color},
        groups={k: {c: v.get(c, 0) for c in Color} for k, v in sorted(groups.items())},
        versions={k: sorted(v) for k, v in sorted(versions.items())},
        revisions=dict(sorted(revisions.items())),
    )
