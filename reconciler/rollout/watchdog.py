"""The watchdog: one box judged from its health answer, at no model-token cost and with no I/O.

It asks four questions, in this order, and the first "no" is the verdict:
alive (DEAD when not, or when the box did not answer), heartbeat fresh (STALE;
the age is measured *by the box*, so clock skew between machines does not
matter), the new config actually loaded (NOT_LOADED), and work flowing
(STALLED: alive, queue not empty, no task processed over the window). An idle
box, with an empty queue and no throughput, is healthy. The window is timed by
the caller's clock (`now` and the previous sample's `taken_at`); a restart in
between (the box's uptime went down) starts the window at the restart.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from reconciler.model.box import Health


class Verdict(enum.StrEnum):
    """The watchdog's verdict on one box; only OK passes."""

    OK = "ok"
    STALLED = "stalled"
    NOT_LOADED = "not-loaded"
    STALE = "stale"
    DEAD = "dead"

    @property
    def ok(self) -> bool:
        return self is Verdict.OK

    def is_worse(self, other: Verdict) -> bool:
        """True when this verdict is worse than `other` (DEAD is the worst)."""
        return _SEVERITY[self] > _SEVERITY[other]


_SEVERITY = {v: i for i, v in enumerate(Verdict)}


@dataclass(frozen=True, slots=True)
class Limits:
    """How fresh a heartbeat must be and how long a queue may sit unprocessed."""

    max_heartbeat_age_s: float = 30.0
    stall_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_heartbeat_age_s <= 0 or self.stall_window_s <= 0:
            raise ValueError("watchdog limits must be positive")


@dataclass(frozen=True, slots=True)
class Sample:
    """A health answer and when (by the caller's clock) it was taken."""

    health: Health
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict and the reason, in words an operator can act on."""

    verdict: Verdict
    reason: str
    flowing: bool = False  # tasks were processed since the last sample, or the queue is empty

    @property
    def ok(self) -> bool:
        return self.verdict.ok


def _short(sha: str | None) -> str:
    return "nothing" if sha is None else sha[:12]


def _flow(health: Health, previous: Sample | None, now: datetime, limits: Limits) -> Judgement:
    if health.queue_depth == 0:
        return Judgement(Verdict.OK, "idle: empty queue", flowing=True)
    if previous is None:
        return Judgement(Verdict.OK, f"queue {health.queue_depth}: no earlier sample yet")
    elapsed = (now - previous.taken_at).total_seconds()
    restarted = health.uptime_s < previous.health.uptime_s
    if restarted:
        since, window, done = "since its restart", health.uptime_s, health.tasks_processed
    else:
        since, window = f"in {elapsed:g}s", elapsed
        done = health.tasks_processed - previous.health.tasks_processed
    if done > 0:
        return Judgement(Verdict.OK, f"processing: {done} tasks {since}", flowing=True)
    if window < limits.stall_window_s:
        return Judgement(
            Verdict.OK, f"queue {health.queue_depth}, no task yet {since} (window not over)"
        )
    return Judgement(
        Verdict.STALLED,
        f"stalled: queue {health.queue_depth} and no task processed {since} "
        f"(window {limits.stall_window_s:g}s)",
    )


def judge(
    health: Health | None,
    *,
    expected_sha: str,
    now: datetime,
    previous: Sample | None = None,
    limits: Limits | None = None,
    error: str | None = None,
) -> Judgement:
    """Judge one box from its latest health answer (None: it did not answer; `error` says why)."""
    lim = limits or Limits()
    if health is None:
        return Judgement(Verdict.DEAD, f"unreachable: {error or 'no health answer'}")
    if not health.alive:
        return Judgement(Verdict.DEAD, "not alive: the agent reports alive=false")
    if health.heartbeat_age_s > lim.max_heartbeat_age_s:
        return Judgement(
            Verdict.STALE,
            f"heartbeat {health.heartbeat_age_s:g}s old (limit {lim.max_heartbeat_age_s:g}s)",
        )
    if health.loaded_sha256 != expected_sha:
        return Judgement(
            Verdict.NOT_LOADED,
            f"runs config {_short(health.loaded_sha256)}, expected {_short(expected_sha)}",
        )
    return _flow(health, previous, now, lim)


def soak_over(
    elapsed_s: float, *, soak_s: float, stall_window_s: float, watched: Iterable[str],
    flowing: Collection[str],
) -> bool:  # fmt: skip
    """A wave's soak ends once its time is up and either the stall window has passed or
    every watched box has been seen working (or idle) since its change.

    The stall window applies even when the soak is 0 (a revert's waves): a stalled agent
    is only seen as such after it.
    """
    if elapsed_s < soak_s:
        return False
    return elapsed_s >= stall_window_s or all(a in flowing for a in watched)


def watchdog_figure(problems: Mapping[str, Judgement], watched: int) -> tuple[bool, str]:
    """The watchdog's line in a wave's verdict: ok, and the figures in words."""
    if problems:
        return False, "; ".join(f"{a}: {j.reason}" for a, j in sorted(problems.items()))
    return True, f"{watched} boxes alive, fresh, loaded"
