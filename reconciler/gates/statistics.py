"""Statistics: one-sided tests, critical values, dispersion between agents, histograms. Pure.

A gate FAILS on significant harm only: the point estimate strictly worse than
the threshold AND the one-sided test statistic above the critical value at the
gate's confidence (Student t when the dispersion came from few agents).

The dispersion says how much like agents differ beyond chance; it comes from
the spread between baseline agents (grouped by shard, tier and config), else
from the spread between the canary agents, else a default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

from reconciler.gates.pools import Pool
from reconciler.gates.windows import AgentWindow, merge_buckets

P95: Final = 0.95
TAIL: Final = 1 - P95  # the share of tasks above the p95
DEFAULT_REL_VAR: Final = 0.25  # per-task relative variance of a mean when no spread is known
NORMAL_FROM_DF: Final = 200  # degrees of freedom from which t is taken as normal

Term = tuple[float, int]  # (sum of squared deviations, members) of one group of agents


@dataclass(frozen=True, slots=True)
class OneSidedTest:
    """One one-sided test's result."""

    worse: bool  # the point estimate is strictly worse than the threshold
    z: float  # the test statistic
    critical: float  # the critical value it must exceed

    @property
    def significant(self) -> bool:
        return self.worse and self.z > self.critical


def critical_value(confidence: float, df: float | None) -> float:
    """One-sided critical value: Student t with `df` degrees of freedom (None: normal)."""
    z = NormalDist().inv_cdf(confidence)
    if df is None or df >= NORMAL_FROM_DF:
        return z
    df = max(df, 1)
    if df < 3:
        return _t_exact(confidence, df)
    # Cornish-Fisher expansion of the t quantile (good to ~1e-3 for df >= 3)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def _t_exact(confidence: float, df: float) -> float:
    """The t quantile, exact for 1 and 2 degrees of freedom; between them, the larger (safer)."""
    p = confidence
    t1 = math.tan(math.pi * (p - 0.5))
    t2 = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    return t1 if df < 2 else t2


def pooled_dispersion(terms: Sequence[Term]) -> tuple[float, float | None]:
    """(dispersion >= 1, its degrees of freedom) from (sum of squares, members) per group."""
    squares = sum(t for t, _ in terms)
    df = sum(k - 1 for _, k in terms if k > 1)
    if df < 1:
        return 1.0, None
    return max(1.0, squares / df), float(df)


# -- error counts ---------------------------------------------------------------------------


def error_dispersion(
    pools: Sequence[Pool],
    canary: Sequence[AgentWindow],
    expected_errors: Mapping[str, float],
    observed_ratio: float,
) -> tuple[float, float | None]:
    """Quasi-Poisson dispersion of error counts, with its degrees of freedom.

    From the baseline agents of `pools` (each against its pool's rate); when
    no pool has two agents, from the canary agents against `expected_errors`
    scaled by the canary's `observed_ratio` (observed / expected errors).
    """
    terms = [_error_term(p) for p in pools if len(p.members) >= 2]
    dispersion, df = pooled_dispersion(terms)
    if df is None and len(canary) >= 2:
        squares = _canary_error_squares(canary, expected_errors, observed_ratio)
        dispersion, df = pooled_dispersion([(squares, len(canary))])
    return dispersion, df


def _error_term(pool: Pool) -> Term:
    """Pearson chi-square of the members' error counts against the pool's rate."""
    rate = pool.smoothed_error_rate
    squares = sum(
        (m.errors - m.tasks * rate) ** 2 / max(m.tasks * rate * (1 - rate), 1e-9)
        for m in pool.members
        if m.tasks > 0
    )
    return squares, sum(1 for m in pool.members if m.tasks > 0)


def _canary_error_squares(
    canary: Sequence[AgentWindow], expected_errors: Mapping[str, float], observed_ratio: float
) -> float:
    squares = 0.0
    for w in canary:
        expected = max(expected_errors[w.agent] * observed_ratio, 1e-9)
        rate = min(expected / max(w.tasks, 1), 0.999)
        squares += (w.errors - expected) ** 2 / max(expected * (1 - rate), 1e-9)
    return squares


# -- per-task means -------------------------------------------------------------------------


def relative_variance(
    pools: Sequence[Pool],
    canary: Sequence[AgentWindow],
    expected_mean: Mapping[str, float],
    metric: str,
    observed_ratio: float,
) -> tuple[float, float | None]:
    """Per-task relative variance (n x squared relative deviation of agents' means), with df.

    From the baseline agents of `pools`; else from the canary agents against
    `expected_mean` scaled by `observed_ratio`; else DEFAULT_REL_VAR (df None).
    """
    terms = [t for p in pools if (t := _mean_term(p, metric)) is not None]
    df = sum(k - 1 for _, k in terms)
    if df >= 1:
        return max(sum(t for t, _ in terms) / df, 1e-12), float(df)
    live = [w for w in canary if w.tasks > 0 and expected_mean.get(w.agent, 0) > 0]
    if len(live) >= 2:
        squares = sum(
            w.tasks
            * (w.total(metric) / w.tasks / (expected_mean[w.agent] * observed_ratio) - 1) ** 2
            for w in live
        )
        return max(squares / (len(live) - 1), 1e-12), float(len(live) - 1)
    return DEFAULT_REL_VAR, None


def _mean_term(pool: Pool, metric: str) -> Term | None:
    """Squared relative deviations of the members' means from the pool's (None: unusable)."""
    members = [m for m in pool.members if m.tasks > 0]
    if len(members) < 2:
        return None
    mean = pool.mean_per_task(metric)
    if not mean > 0:
        return None
    squares = sum(m.tasks * (m.total(metric) / m.tasks / mean - 1) ** 2 for m in members)
    return squares, len(members)


# -- latency histograms ---------------------------------------------------------------------


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets; None without observations."""
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    i = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if i == len(buckets) - 1:
        return buckets[-2][0] if len(buckets) > 1 else None
    upper, count = buckets[i]
    lower, below = (0.0, 0.0) if i == 0 else buckets[i - 1]
    if count == below:
        return upper
    return lower + (upper - lower) * (rank - below) / (count - below)


def count_above(t: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Observations provably above `t`: those in buckets whose lower bound is at least `t`.

    The threshold is rounded up to a bucket bound, so the bucket layout can
    never make a canary look slower than it is (interpolating inside a wide
    bucket can double a p95). A slower canary must show it past a bound.
    """
    if not buckets:
        return 0.0
    total = buckets[-1][1]
    for le, c in buckets:
        if le >= t:
            return total - c
    return 0.0


def latency_dispersion(pools: Sequence[Pool]) -> tuple[float, float | None]:
    """Dispersion of the share of tasks above the p95 between like agents, with df."""
    return pooled_dispersion([t for p in pools if (t := _latency_term(p)) is not None])


def _latency_term(pool: Pool) -> Term | None:
    """Chi-square of the members' counts above the pool's p95 against 5% (None: unusable)."""
    p95 = quantile(P95, merge_buckets(pool.members))
    members = [m for m in pool.members if m.buckets and m.buckets[-1][1] > 0]
    if p95 is None or len(members) < 2:
        return None
    squares = sum(
        (count_above(p95, m.buckets) - TAIL * m.buckets[-1][1]) ** 2
        / (TAIL * (1 - TAIL) * m.buckets[-1][1])
        for m in members
    )
    return squares, len(members)
