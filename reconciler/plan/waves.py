"""Wave sizes and the failure budget, from the policy and the number of changing agents.

Each wave entry is a count (`5`) or a cumulative percentage (`"25%"`) of the
agents that change, and wave k brings the total to entry k. Percentages round
up (25% of 7 is 2), counts clamp to the number of changing agents, and a wave
that adds nobody is dropped. Each entry is checked on its own here (the order
rules live in `reconcile validate`); the last entry must be 100%. A budget
percentage rounds *down*: it never allows more failures than the operator wrote.
Arithmetic is exact (fractions), so 12.5% of 8 is 1, never 0.99999.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from reconciler.model.fleet import PERCENT_RE
from reconciler.plan.errors import PlanError


def _percent(entry: str) -> Fraction | None:
    m = PERCENT_RE.match(entry)
    return None if m is None else Fraction(m.group(1))


def _target(entry: object, index: int, n: int) -> int:
    """The cumulative number of agents wave `index` (0-based) brings the rollout to."""
    where = f"wave {index + 1}"
    if isinstance(entry, bool) or not isinstance(entry, int | str):
        raise PlanError(f"{where}: {entry!r} is not a count or a percentage; write 5 or 25%")
    if isinstance(entry, int):
        if entry <= 0:
            raise PlanError(f"{where}: a count must be positive, got {entry}")
        return min(entry, n)
    pct = _percent(entry)
    if pct is None:
        raise PlanError(f"{where}: {entry!r} is neither a count nor a percentage; write 5 or 25%")
    if not 0 < pct <= 100:
        raise PlanError(f"{where}: {entry} is outside (0%, 100%]")
    return math.ceil(pct * n / 100)


def wave_totals(entries: Sequence[int | str], n: int) -> list[int]:
    """The cumulative totals of the non-empty waves for `n` changing agents.

    Raises:
        PlanError: an entry is not a positive count or a percentage in (0%, 100%],
            or the last entry is not 100%.
    """
    if n < 0:
        raise PlanError(f"the number of changing agents cannot be negative, got {n}")
    if not entries:
        raise PlanError("no waves: the rollout policy needs waves ending in 100%")
    targets = [_target(e, i, n) for i, e in enumerate(entries)]
    last = entries[-1]
    if not (isinstance(last, str) and _percent(last) == 100):
        raise PlanError(
            f"the last wave is {last!r}; it must be 100% so every changing agent is reached"
        )
    totals: list[int] = []
    reached = 0
    for target in targets:
        if target > reached:
            totals.append(target)
            reached = target
    return totals


def wave_sizes(entries: Sequence[int | str], n: int) -> list[int]:
    """How many agents each non-empty wave adds, for `n` changing agents."""
    totals = wave_totals(entries, n)
    return [b - a for a, b in zip([0, *totals], totals, strict=False)]


def budget_count(budget: int | str, n: int) -> int:
    """The failure budget as a number of boxes, for `n` changing agents (percentages round down).

    Raises:
        PlanError: a negative count, or not a percentage in [0%, 100%].
    """
    if isinstance(budget, bool) or not isinstance(budget, int | str):
        raise PlanError(f"failure_budget {budget!r} is not a count or a percentage; write 0 or 1%")
    if isinstance(budget, int):
        if budget < 0:
            raise PlanError(f"failure_budget must not be negative, got {budget}")
        return budget
    pct = _percent(budget)
    if pct is None or not 0 <= pct <= 100:
        raise PlanError(
            f"failure_budget {budget!r} is neither a count nor a percentage in [0%, 100%]"
        )
    return math.floor(pct * n / 100)
