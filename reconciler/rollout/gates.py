"""Gates: is the wave's canary significantly worse than its baseline? Pure: no I/O, no clock.

A gate compares what the changed agents (the canary) did in a window with what
comparable unchanged agents (the baseline) did in the same window, and with
absolute limits. It answers PASS, FAIL or INCONCLUSIVE, always with its figures.

- The baseline of each canary agent (`choose_pools`): unchanged agents of the
  same shard and tier when they have `min_samples`, else of the same tier, else
  the agent itself before the change (its window from an earlier wave). A
  pool is never drawn from another tier: tokens and cost differ by tier.
- Error rate: canary errors against the errors the baseline rates predict for
  the canary's tasks (indirect standardisation), on the log scale, with a
  quasi-Poisson dispersion estimated from the spread between baseline agents.
- Per-task means (cost, tokens, output tokens): canary totals against the
  totals the baseline means predict, with the per-task variance estimated
  from the spread of the baseline agents' means (which includes differences
  between agents, not just between tasks).
- p95 latency: the share of canary tasks slower than `max_ratio` x the
  baseline's p95; if the canary's p95 is within the limit that share is at
  most 5%, so the test is one-sided binomial against 5%.
- A gate FAILS on significant harm only: the point estimate strictly worse
  than the threshold AND the one-sided test significant at `confidence`
  (Student t critical values when the dispersion came from few agents).
  Exactly at the threshold is a pass. Too few samples, no baseline, or any
  invalid canary window (NaN, Inf, negative, errors > tasks, stale, another
  agent's series, no time elapsed) are INCONCLUSIVE: never a pass.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Final

from reconciler.model.fleet import Gate

P95: Final = 0.95
TAIL: Final = 1 - P95
DEFAULT_REL_VAR: Final = 0.25  # per-task relative variance of a mean when no spread is known
MEAN_METRICS: Final = ("cost_per_task", "tokens_per_task", "output_tokens_per_task")


class Outcome(enum.StrEnum):
    """A gate's answer for a wave."""

    PASS = "pass"  # noqa: S105 (not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Where an agent sits: what a baseline is matched on."""

    name: str
    tier: str
    shard: str
    cohort: str = ""  # what it ran before the change (its config sha): peers share it


@dataclass(frozen=True, slots=True)
class AgentWindow:
    """What one agent did between `start` and `end` (counter increases; seconds, any epoch)."""

    agent: str
    start: float
    end: float
    tasks: float
    errors: float
    tokens_in: float
    tokens_out: float
    cost: float
    buckets: tuple[tuple[float, float], ...] = ()  # latency: (le, cumulative count), +Inf last
    last_sample_at: float | None = None  # newest underlying sample; None: `end`
    custom: Mapping[str, float] = field(default_factory=dict)  # custom gate name -> value

    @property
    def elapsed(self) -> float:
        return self.end - self.start

    def total(self, metric: str) -> float:
        """The numerator of a per-task mean metric."""
        if metric == "cost_per_task":
            return self.cost
        if metric == "tokens_per_task":
            return self.tokens_in + self.tokens_out
        if metric == "output_tokens_per_task":
            return self.tokens_out
        raise ValueError(f"{metric} is not a per-task mean")


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x >= 0


def window_problem(
    w: AgentWindow, *, agent: str, now: float | None = None, stale_after_s: float | None = None
) -> str | None:
    """Why the window cannot be used for `agent` (None: it can)."""
    if w.agent != agent:
        return f"series of agent {w.agent!r} returned for {agent!r}"
    if not (math.isfinite(w.start) and math.isfinite(w.end)) or w.end <= w.start:
        return f"no time elapsed in the window ({w.start:g} .. {w.end:g})"
    for name in ("tasks", "errors", "tokens_in", "tokens_out", "cost"):
        value = getattr(w, name)
        if not _finite(value):
            return f"{name} is {value} (NaN, infinite or negative)"
    if w.errors > w.tasks:
        return f"{w.errors:g} errors but only {w.tasks:g} tasks"
    prev = 0.0
    for le, count in w.buckets:
        if not _finite(count) or count < prev:
            return f"latency bucket le={le:g} is {count} (invalid or not cumulative)"
        prev = count
    if w.buckets and not math.isinf(w.buckets[-1][0]):
        return "latency buckets lack le=+Inf"
    for name, value in w.custom.items():
        if not math.isfinite(value):
            return f"custom value {name} is {value}"
    seen = w.last_sample_at if w.last_sample_at is not None else w.end
    if now is not None and stale_after_s is not None and now - seen > stale_after_s:
        return f"newest sample is {now - seen:.0f}s old (stale after {stale_after_s:g}s)"
    return None


@dataclass(frozen=True, slots=True)
class Pool:
    """The baseline one or more canary agents are compared with."""

    kind: str  # "same shard and tier", "same tier", "before the change"
    members: tuple[AgentWindow, ...]

    @property
    def tasks(self) -> float:
        return sum(m.tasks for m in self.members)


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
    groups: dict[tuple[str, ...], list[AgentWindow]] = {}
    for name in sorted(unchanged):
        w, who = unchanged[name], info.get(name)
        if who is None:
            continue
        for key in _keys(who):
            groups.setdefault(key, []).append(w)
    made: dict[tuple[str, ...], Pool] = {}
    out: dict[str, Pool] = {}
    for name in canary:
        who = info.get(name)
        if who is None:
            continue
        for key, kind in zip(_keys(who), _KINDS, strict=True):
            if key[0] == "before":
                if name in before:
                    out[name] = Pool(kind, (before[name],))
                    break
                continue
            members = groups.get(key, [])
            if sum(w.tasks for w in members) >= min_samples:
                out[name] = made.setdefault(key, Pool(kind, tuple(members)))
                break
    return out


_KINDS: Final = (
    "same shard, tier and config",
    "same tier and config",
    "before the change",
    "same shard and tier",
    "same tier",
)


def _keys(who: AgentInfo) -> tuple[tuple[str, ...], ...]:
    """The pool keys of an agent, best match first (in the order of _KINDS)."""
    return (
        ("stc", who.shard, who.tier, who.cohort),
        ("tc", who.tier, who.cohort),
        ("before",),
        ("st", who.shard, who.tier),
        ("t", who.tier),
    )


def spread_pools(info: Mapping[str, AgentInfo], unchanged: Mapping[str, AgentWindow]) -> list[Pool]:
    """Unchanged agents grouped by shard, tier and config: how much like agents differ."""
    groups: dict[tuple[str, str, str], list[AgentWindow]] = {}
    for name in sorted(unchanged):
        who = info.get(name)
        if who is not None and unchanged[name].tasks > 0:
            groups.setdefault((who.shard, who.tier, who.cohort), []).append(unchanged[name])
    return [Pool("spread", tuple(ws)) for ws in groups.values() if len(ws) >= 2]


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One gate's decision with its figures (None where a figure does not exist)."""

    gate: str
    metric: str
    outcome: Outcome
    reason: str
    canary: float | None = None
    baseline: float | None = None
    threshold: float | None = None  # max_ratio x baseline, or the absolute max if lower
    canary_samples: int = 0
    baseline_samples: int = 0
    canary_agents: int = 0
    baseline_agents: int = 0
    baseline_kind: str = ""
    z: float | None = None
    critical: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.PASS

    def detail(self) -> str:
        """The figures in words, for progress lines, the journal and the incident."""
        parts = [f"{self.outcome.value.upper()}: {self.reason}"]
        if self.canary is not None:
            parts.append(f"canary {_num(self.canary)}")
        if self.baseline is not None:
            parts.append(f"baseline {_num(self.baseline)}")
        if self.threshold is not None:
            parts.append(f"threshold {_num(self.threshold)}")
        parts.append(f"samples {self.canary_samples} canary / {self.baseline_samples} baseline")
        if self.baseline_kind:
            parts.append(f"baseline: {self.baseline_kind}")
        if self.z is not None and self.critical is not None:
            parts.append(f"z {self.z:.2f} vs {self.critical:.2f}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, str | int | float | bool | None]:
        return {
            "gate": self.gate,
            "metric": self.metric,
            "outcome": self.outcome.value,
            "ok": self.ok,
            "reason": self.reason,
            "canary": _round(self.canary),
            "baseline": _round(self.baseline),
            "threshold": _round(self.threshold),
            "canary_samples": self.canary_samples,
            "baseline_samples": self.baseline_samples,
            "canary_agents": self.canary_agents,
            "baseline_agents": self.baseline_agents,
            "baseline_kind": self.baseline_kind,
            "z": _round(self.z),
            "critical": _round(self.critical),
        }


def _num(x: float) -> str:
    return f"{x:.4g}"


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def critical_value(confidence: float, df: float | None) -> float:
    """One-sided critical value: Student t with `df` degrees of freedom (None: normal)."""
    z = NormalDist().inv_cdf(confidence)
    if df is None or df >= 200:
        return z
    df = max(df, 1)
    if df < 3:
        # exact for 1 and 2 degrees of freedom; between them, the larger (safer) one
        p = confidence
        t1 = math.tan(math.pi * (p - 0.5))
        t2 = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
        return t1 if df < 2 else t2
    # Cornish-Fisher expansion of the t quantile (good to ~1e-3 for df >= 3)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True, slots=True)
class _Test:
    """One one-sided test's result."""

    worse: bool  # the point estimate is strictly worse than the threshold
    z: float
    critical: float

    @property
    def significant(self) -> bool:
        return self.worse and self.z > self.critical


def _distinct(pools: Iterable[Pool]) -> list[Pool]:
    seen: dict[int, Pool] = {}
    for p in pools:
        seen.setdefault(id(p), p)
    return list(seen.values())


def _dispersion(
    terms: Sequence[tuple[float, int]],
) -> tuple[float, float | None]:
    """(dispersion >= 1, its degrees of freedom) from (sum of squares, members) per group."""
    ss = sum(t for t, _ in terms)
    df = sum(k - 1 for _, k in terms if k > 1)
    if df < 1:
        return 1.0, None
    return max(1.0, ss / df), float(df)


# -- error rate -----------------------------------------------------------------------------


def _raw_rate(p: Pool) -> float:
    return sum(m.errors for m in p.members) / p.tasks if p.tasks else 0.0


def _rate_of(p: Pool) -> float:
    return (sum(m.errors for m in p.members) + 0.5) / (p.tasks + 1.0)


def _error_dispersion(
    pools: Sequence[Pool], canary: Sequence[AgentWindow], expect: Mapping[str, float], q: float
) -> tuple[float, float | None]:
    terms = []
    for p in pools:
        if len(p.members) < 2:
            continue
        rate = _rate_of(p)
        ss = sum(
            (m.errors - m.tasks * rate) ** 2 / max(m.tasks * rate * (1 - rate), 1e-9)
            for m in p.members
            if m.tasks > 0
        )
        terms.append((ss, sum(1 for m in p.members if m.tasks > 0)))
    phi, df = _dispersion(terms)
    if df is None and len(canary) >= 2:
        ss = 0.0
        for w in canary:
            e = max(expect[w.agent] * q, 1e-9)
            ss += (w.errors - e) ** 2 / max(e * (1 - min(e / max(w.tasks, 1), 0.999)), 1e-9)
        phi, df = _dispersion([(ss, len(canary))])
    return phi, df


def _error_rate(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    confidence: float,
    spread: Sequence[Pool],
) -> tuple[_Test | None, _Test | None, dict[str, float]]:
    n_c = sum(w.tasks for w in canary)
    observed = sum(w.errors for w in canary)
    figures = {"canary": observed / n_c if n_c else math.nan}
    ratio_test = None
    used = [w for w in canary if w.agent in pools]
    expect = {w.agent: w.tasks * _rate_of(pools[w.agent]) for w in used}
    e0 = sum(expect.values())
    # e0 is 0 when the canary processed no task yet (a wave judged right after its
    # change): no ratio to test; the sample count keeps the verdict inconclusive.
    if gate.max_ratio is not None and used and e0 > 0:
        n_u = sum(w.tasks for w in used)
        o_u = sum(w.errors for w in used)
        distinct = _distinct(pools[w.agent] for w in used)
        share = {id(p): 0.0 for p in distinct}
        for w in used:
            share[id(pools[w.agent])] += expect[w.agent] / e0
        phi, df = _error_dispersion(spread or distinct, used, expect, o_u / e0 if e0 else 1.0)
        r = gate.max_ratio
        var = phi / (r * e0) + phi * sum(
            share[id(p)] ** 2 / (sum(m.errors for m in p.members) + 0.5) for p in distinct
        )
        z = math.log((o_u + 0.5) / (r * e0 + 0.5)) / math.sqrt(var)
        raw = sum(w.tasks * _raw_rate(pools[w.agent]) for w in used)  # unsmoothed
        figures["baseline"] = raw / n_u
        figures["threshold"] = r * raw / n_u
        ratio_test = _Test(o_u > r * raw, z, critical_value(confidence, df))
    max_test = None
    if gate.max is not None and n_c > 0:
        limit = gate.max
        if limit <= 0:
            max_test = _Test(observed > 0, math.inf if observed > 0 else 0.0, 0.0)
        elif limit < 1:
            z = (observed - limit * n_c) / math.sqrt(limit * (1 - limit) * n_c)
            max_test = _Test(observed > limit * n_c, z, critical_value(confidence, None))
        else:
            max_test = _Test(False, -math.inf, 0.0)
        figures["limit"] = limit
    return ratio_test, max_test, figures


# -- per-task means -------------------------------------------------------------------------


def _mean_of(p: Pool, metric: str) -> float:
    return sum(m.total(metric) for m in p.members) / p.tasks if p.tasks else math.nan


def _rel_var(
    pools: Sequence[Pool],
    canary: Sequence[AgentWindow],
    expected_mean: Mapping[str, float],
    metric: str,
    q: float,
) -> tuple[float, float | None]:
    """Per-task relative variance (n x squared relative deviation of agents' means)."""
    terms = []
    for p in pools:
        members = [m for m in p.members if m.tasks > 0]
        if len(members) < 2:
            continue
        mean = _mean_of(p, metric)
        if not mean > 0:
            continue
        ss = sum(m.tasks * (m.total(metric) / m.tasks / mean - 1) ** 2 for m in members)
        terms.append((ss, len(members)))
    df = sum(k - 1 for _, k in terms)
    if df >= 1:
        return max(sum(t for t, _ in terms) / df, 1e-12), float(df)
    live = [w for w in canary if w.tasks > 0 and expected_mean.get(w.agent, 0) > 0]
    if len(live) >= 2:
        ss = sum(
            w.tasks * (w.total(metric) / w.tasks / (expected_mean[w.agent] * q) - 1) ** 2
            for w in live
        )
        return max(ss / (len(live) - 1), 1e-12), float(len(live) - 1)
    return DEFAULT_REL_VAR, None


def _mean_metric(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    confidence: float,
    spread: Sequence[Pool],
) -> tuple[_Test | None, _Test | None, dict[str, float]]:
    metric = gate.metric
    n_c = sum(w.tasks for w in canary)
    t_c = sum(w.total(metric) for w in canary)
    figures = {"canary": t_c / n_c if n_c else math.nan}
    used = [w for w in canary if w.agent in pools]
    ratio_test = None
    s2, df = DEFAULT_REL_VAR, None
    if used:
        means = {w.agent: _mean_of(pools[w.agent], metric) for w in used}
        t0 = sum(w.tasks * means[w.agent] for w in used)
        t_u = sum(w.total(metric) for w in used)
        n_u = sum(w.tasks for w in used)
        distinct = _distinct(pools[w.agent] for w in used)
        s2, df = _rel_var(spread or distinct, used, means, metric, t_u / t0 if t0 > 0 else 1.0)
        if gate.max_ratio is not None and t0 > 0:
            share = {id(p): 0.0 for p in distinct}
            for w in used:
                share[id(pools[w.agent])] += w.tasks * means[w.agent] / t0
            r = gate.max_ratio
            var = s2 / n_u + s2 * sum(share[id(p)] ** 2 / p.tasks for p in distinct)
            q = t_u / t0
            z = (math.log(q / r) if q > 0 else -math.inf) / math.sqrt(var)
            figures["baseline"] = t0 / n_u
            figures["threshold"] = r * t0 / n_u
            ratio_test = _Test(t_u > r * t0, z, critical_value(confidence, df))
        elif gate.max_ratio is not None:
            figures["baseline"] = 0.0
            ratio_test = _Test(False, -math.inf, 0.0)  # a zero baseline: no ratio exists
    max_test = None
    if gate.max is not None and n_c > 0:
        mean, limit = t_c / n_c, gate.max
        if limit <= 0 or mean <= 0:
            max_test = _Test(mean > limit, math.inf if mean > limit else -math.inf, 0.0)
        else:
            z = math.log(mean / limit) / math.sqrt(s2 / n_c)
            max_test = _Test(mean > limit, z, critical_value(confidence, df))
        figures["limit"] = limit
    return ratio_test, max_test, figures


# -- p95 latency ----------------------------------------------------------------------------


def merge_buckets(windows: Iterable[AgentWindow]) -> tuple[tuple[float, float], ...]:
    """The cumulative buckets of several windows added up (bounds must agree)."""
    total: dict[float, float] = {}
    for w in windows:
        for le, c in w.buckets:
            total[le] = total.get(le, 0.0) + c
    return tuple(sorted(total.items()))


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


def _latency(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    confidence: float,
    spread: Sequence[Pool],
) -> tuple[_Test | None, _Test | None, dict[str, float]]:
    n_c = sum(w.buckets[-1][1] for w in canary if w.buckets)
    p95 = quantile(P95, merge_buckets(canary))
    figures = {"canary": p95 if p95 is not None else math.nan, "samples": n_c}

    def test(thresholds: Mapping[str, float], phi: float, df: float | None) -> _Test | None:
        ws = [w for w in canary if w.agent in thresholds and w.buckets]
        n = sum(w.buckets[-1][1] for w in ws)
        if n <= 0:
            return None
        x = sum(count_above(thresholds[w.agent], w.buckets) for w in ws)
        z = (x - TAIL * n) / math.sqrt(phi * TAIL * (1 - TAIL) * n)
        return _Test(x > TAIL * n, z, critical_value(confidence, df))

    ratio_test = None
    used = [w for w in canary if w.agent in pools and w.buckets]
    if gate.max_ratio is not None and used:
        q_of: dict[int, float | None] = {}
        for p in _distinct(pools[w.agent] for w in used):
            q_of[id(p)] = quantile(P95, merge_buckets(p.members))
        base = {w.agent: q_of[id(pools[w.agent])] for w in used}
        known = {a: q for a, q in base.items() if q is not None}
        if known:
            terms = []
            for p in spread or _distinct(pools[w.agent] for w in used):
                q = quantile(P95, merge_buckets(p.members))
                members = [m for m in p.members if m.buckets and m.buckets[-1][1] > 0]
                if q is None or len(members) < 2:
                    continue
                ss = sum(
                    (count_above(q, m.buckets) - TAIL * m.buckets[-1][1]) ** 2
                    / (TAIL * (1 - TAIL) * m.buckets[-1][1])
                    for m in members
                )
                terms.append((ss, len(members)))
            phi, df = _dispersion(terms)
            weights = [w.buckets[-1][1] for w in used if w.agent in known]
            figures["baseline"] = sum(
                known[w.agent] * w.buckets[-1][1] for w in used if w.agent in known
            ) / max(sum(weights), 1.0)
            figures["threshold"] = gate.max_ratio * figures["baseline"]
            ratio_test = test({a: gate.max_ratio * q for a, q in known.items()}, phi, df)
    max_test = None
    if gate.max is not None:
        max_test = test({w.agent: gate.max for w in canary}, 1.0, None)
        figures["limit"] = gate.max
    return ratio_test, max_test, figures


# -- custom ---------------------------------------------------------------------------------


def _custom(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    confidence: float,
    spread: Sequence[Pool],
) -> tuple[_Test | None, _Test | None, dict[str, float]]:
    """A custom PromQL value per agent: canary agents' mean against the baseline agents'."""
    vals = [w.custom[gate.name] for w in canary if gate.name in w.custom]
    figures = {"canary": sum(vals) / len(vals) if vals else math.nan}
    base_ws = {id(m): m for p in _distinct(pools.values()) for m in p.members}
    base = [m.custom[gate.name] for m in base_ws.values() if gate.name in m.custom]
    ratio_test = None
    if gate.max_ratio is not None and vals and base:
        mean_c, mean_b = figures["canary"], sum(base) / len(base)
        figures["baseline"] = mean_b
        figures["threshold"] = gate.max_ratio * mean_b
        squares = [(v - mean_b) ** 2 for v in base]
        if len(base) >= 2 and mean_b > 0:
            s2 = sum(squares) / (len(base) - 1)
            se = math.sqrt(s2 / len(vals) + gate.max_ratio**2 * s2 / len(base))
            z = (mean_c - gate.max_ratio * mean_b) / se if se > 0 else math.copysign(math.inf, 1)
            crit = critical_value(confidence, len(base) - 1)
        else:
            z, crit = (math.inf, 0.0)  # no spread known: the raw comparison decides
        ratio_test = _Test(mean_c > gate.max_ratio * mean_b, z, crit)
    max_test = None
    if gate.max is not None and vals:
        worse = figures["canary"] > gate.max
        max_test = _Test(worse, math.inf if worse else -math.inf, 0.0)
        figures["limit"] = gate.max
    return ratio_test, max_test, figures


_EVALUATORS: Final[
    Mapping[
        str,
        Callable[
            [Gate, Sequence[AgentWindow], Mapping[str, Pool], float, Sequence[Pool]],
            tuple[_Test | None, _Test | None, dict[str, float]],
        ],
    ]
] = {
    "error_rate": _error_rate,
    "latency_p95": _latency,
    "custom": _custom,
    **dict.fromkeys(MEAN_METRICS, _mean_metric),
}


def evaluate(
    gate: Gate,
    canary: Sequence[AgentWindow],
    pools: Mapping[str, Pool],
    *,
    problems: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    spread: Sequence[Pool] = (),
) -> GateVerdict:
    """The gate's verdict on the canary windows against their baseline pools.

    `problems`: canary agents whose window could not be had or used, with why;
    any one makes the verdict INCONCLUSIVE (never a pass). `spread`: groups of
    like unchanged agents, to estimate how much agents differ (default: the pools).
    """
    metric = gate.metric
    base_members = {id(m): m for p in _distinct(pools.values()) for m in p.members}
    v = GateVerdict(
        gate=gate.name,
        metric=metric,
        outcome=Outcome.INCONCLUSIVE,
        reason="",
        canary_agents=len(canary),
        baseline_agents=len(base_members),
        baseline_kind=", ".join(sorted({p.kind for p in pools.values()})),
        baseline_samples=round(sum(m.tasks for m in base_members.values())),
    )
    if problems:
        first = "; ".join(f"{a}: {why}" for a, why in sorted(problems.items())[:5])
        return replace(v, reason=f"no usable data from {len(problems)} canary agent(s): {first}")
    if not canary:
        return replace(v, reason="no canary agent to judge")
    bad = next(
        (f"{w.agent}: {why}" for w in canary if (why := window_problem(w, agent=w.agent))), None
    )
    if bad is not None:
        return replace(v, reason=f"invalid canary data: {bad}")
    try:
        ratio_test, max_test, figs = _EVALUATORS[metric](gate, canary, pools, confidence, spread)
    except (ArithmeticError, ValueError) as exc:  # never a crash, never a pass
        return replace(v, reason=f"the figures could not be computed: {exc}")
    samples = figs.pop("samples", None)
    n_c = round(samples if samples is not None else sum(w.tasks for w in canary))
    threshold = figs.get("threshold")
    limit = figs.get("limit")
    if limit is not None and (threshold is None or limit < threshold):
        threshold = limit
    v = replace(
        v,
        canary=_clean(figs.get("canary")),
        baseline=_clean(figs.get("baseline")),
        threshold=_clean(threshold),
        canary_samples=n_c,
    )
    for name, t in (("ratio", ratio_test), ("max", max_test)):
        if t is not None and t.significant and n_c >= gate.min_samples:
            why = (
                f"{metric} significantly above {gate.max_ratio:g} x baseline"
                if name == "ratio"
                else f"{metric} significantly above the limit {gate.max:g}"
            )
            return replace(v, outcome=Outcome.FAIL, reason=why, z=_clean(t.z), critical=t.critical)
    if n_c < gate.min_samples:
        return replace(v, reason=f"too few samples: {n_c} of the {gate.min_samples} needed")
    if gate.max_ratio is not None:
        missing = [w.agent for w in canary if w.agent not in pools]
        if ratio_test is None:
            return replace(
                v,
                reason="no baseline: no unchanged agent of the same tier with enough samples, "
                "and no window of these agents from before the change",
            )
        if len(missing) * 2 > len(canary):
            return replace(v, reason=f"no baseline for {len(missing)} of {len(canary)} agents")
        if v.baseline_samples < gate.min_samples:
            return replace(
                v,
                reason=f"too few baseline samples: {v.baseline_samples} of the "
                f"{gate.min_samples} needed",
            )
    if gate.max_ratio is None and max_test is None:
        return replace(v, reason="the gate sets neither max_ratio nor max")
    shown = ratio_test or max_test
    return replace(
        v,
        outcome=Outcome.PASS,
        reason="no significant harm",
        z=_clean(shown.z) if shown else None,
        critical=shown.critical if shown else None,
    )


def _clean(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def judge_wave(
    gates_for: Callable[[str], Sequence[Gate]],
    info: Mapping[str, AgentInfo],
    canary: Mapping[str, AgentWindow],
    unchanged: Mapping[str, AgentWindow],
    before: Mapping[str, AgentWindow],
    problems: Mapping[str, str] | None = None,
) -> list[GateVerdict]:
    """Every gate's verdict for the changed agents (`canary` and those in `problems`).

    `gates_for(tier)` is the gate list of a tier (fleet gates with the tier's
    overrides); a gate whose settings differ between tiers is judged per
    setting, and named with its tiers.
    """
    problems = dict(problems or {})
    spread = spread_pools(info, unchanged)
    groups: dict[str, dict[Gate, list[str]]] = {}
    for name in sorted({*canary, *problems}):
        tier = info[name].tier if name in info else ""
        for gate in gates_for(tier):
            groups.setdefault(gate.name, {}).setdefault(gate, []).append(name)
    verdicts = []
    for gate_name, by_spec in groups.items():
        for spec, agents in by_spec.items():
            gate = spec
            if len(by_spec) > 1:
                tiers = sorted({info[a].tier for a in agents if a in info})
                gate = spec.model_copy(update={"name": f"{gate_name} ({', '.join(tiers)})"})
            ws = [canary[a] for a in agents if a in canary]
            pools = choose_pools(
                [w.agent for w in ws], info, unchanged, before, gate.min_samples, gate.baseline
            )
            bad = {a: problems[a] for a in agents if a in problems}
            verdicts.append(
                evaluate(gate, ws, pools, problems=bad, confidence=gate.confidence, spread=spread)
            )
    return verdicts
