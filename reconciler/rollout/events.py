"""Events: what happened, told to the machine by the driver (past tense, frozen, self-checking).

Each event checks its own invariants when built (h11's `_events.py`), so a
malformed one never reaches `step()`. Every field is a plain value (str, int,
bool, StrEnum, tuples of those), so events go to the journal as JSON and come
back equal: a rollout is the fold of `step` over its recorded events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconciler.rollout.watchdog import Verdict


class Event:
    """Base of every event; not used directly."""

    __slots__ = ()


def _text(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, str) or not value:
            raise TypeError(f"{type(owner).__name__}.{name} must be a non-empty str")


def _wave(owner: object, wave: int) -> None:
    if isinstance(wave, bool) or not isinstance(wave, int) or wave < 0:
        raise TypeError(f"{type(owner).__name__}.wave must be an int >= 0")


class ApplyStep(enum.StrEnum):
    """Where applying a box failed; from WRITE on, the box may have changed."""

    CONNECT = "connect"
    LEASE = "lease"
    STAMP_CHECK = "stamp-check"
    WRITE = "write"
    RELOAD = "reload"
    RESTART = "restart"
    VERIFY = "verify"
    STAMP = "stamp"

    @property
    def touched(self) -> bool:
        """The box may hold the new file: it must be restored on rollback."""
        return _ORDER[self] >= _ORDER[ApplyStep.WRITE]


_ORDER = {s: i for i, s in enumerate(ApplyStep)}


@dataclass(frozen=True, slots=True)
class GateFigure:
    """One gate's result for a wave: its name, pass or fail, and the figures in words."""

    gate: str
    ok: bool
    detail: str

    def __post_init__(self) -> None:
        _text(self, "gate", "detail")
        if not isinstance(self.ok, bool):
            raise TypeError("GateFigure.ok must be a bool")


@dataclass(frozen=True, slots=True)
class Started(Event):
    """The driver took the lock and began; at most `parallel` box operations run at once."""

    parallel: int = 32

    def __post_init__(self) -> None:
        if isinstance(self.parallel, bool) or not isinstance(self.parallel, int):
            raise TypeError("Started.parallel must be an int")
        if self.parallel < 1:
            raise ValueError(f"Started.parallel must be at least 1, got {self.parallel}")


@dataclass(frozen=True, slots=True)
class PreflightPassed(Event):
    """Every box of the plan is reachable, unmoved and ready; nothing was written."""


@dataclass(frozen=True, slots=True)
class PreflightFailed(Event):
    """Preflight found a box unfit (unreachable, moved, foreign); nothing was written."""

    reason: str

    def __post_init__(self) -> None:
        _text(self, "reason")


@dataclass(frozen=True, slots=True)
class BoxApplied(Event):
    """The box got its new config: written, activated, verified loaded, stamped."""

    agent: str

    def __post_init__(self) -> None:
        _text(self, "agent")


@dataclass(frozen=True, slots=True)
class BoxFailed(Event):
    """Applying the box failed at `step`; it counts against the failure budget."""

    agent: str
    step: ApplyStep
    reason: str

    def __post_init__(self) -> None:
        _text(self, "agent", "reason")
        if not isinstance(self.step, ApplyStep):
            raise TypeError("BoxFailed.step must be an ApplyStep")


@dataclass(frozen=True, slots=True)
class WatchdogPassed(Event):
    """The box is alive, fresh, runs the new config and is not stalled."""

    agent: str

    def __post_init__(self) -> None:
        _text(self, "agent")


@dataclass(frozen=True, slots=True)
class WatchdogFailed(Event):
    """The watchdog judged the box unhealthy; it counts against the failure budget."""

    agent: str
    verdict: Verdict
    reason: str

    def __post_init__(self) -> None:
        _text(self, "agent", "reason")
        if not isinstance(self.verdict, Verdict) or self.verdict.ok:
            raise ValueError("WatchdogFailed.verdict must be a failing Verdict")


@dataclass(frozen=True, slots=True)
class SoakOver(Event):
    """The wave soaked for its time."""

    wave: int

    def __post_init__(self) -> None:
        _wave(self, self.wave)


@dataclass(frozen=True, slots=True)
class GatesPassed(Event):
    """Every gate passed for the wave."""

    wave: int
    figures: tuple[GateFigure, ...] = ()

    def __post_init__(self) -> None:
        _wave(self, self.wave)
        if any(not f.ok for f in self.figures):
            raise ValueError("GatesPassed holds a failing gate; send GatesFailed")


@dataclass(frozen=True, slots=True)
class GatesFailed(Event):
    """At least one gate failed (or had too little data) for the wave: roll back everything."""

    wave: int
    figures: tuple[GateFigure, ...]

    def __post_init__(self) -> None:
        _wave(self, self.wave)
        if not any(not f.ok for f in self.figures):
            raise ValueError("GatesFailed needs at least one failing GateFigure")

    @property
    def failed(self) -> tuple[GateFigure, ...]:
        return tuple(f for f in self.figures if not f.ok)


@dataclass(frozen=True, slots=True)
class BoxRestored(Event):
    """The box runs its pre-change config again, verified."""

    agent: str

    def __post_init__(self) -> None:
        _text(self, "agent")


@dataclass(frozen=True, slots=True)
class BoxRestoreFailed(Event):
    """Restoring the box failed: it needs a human (exit 4)."""

    agent: str
    reason: str

    def __post_init__(self) -> None:
        _text(self, "agent", "reason")


@dataclass(frozen=True, slots=True)
class Interrupted(Event):
    """The operator (or a signal) stopped the rollout; what changed is rolled back."""

    reason: str = "interrupted by the operator"

    def __post_init__(self) -> None:
        _text(self, "reason")


EVENT_TYPES: tuple[type[Event], ...] = (
    Started,
    PreflightPassed,
    PreflightFailed,
    BoxApplied,
    BoxFailed,
    WatchdogPassed,
    WatchdogFailed,
    SoakOver,
    GatesPassed,
    GatesFailed,
    BoxRestored,
    BoxRestoreFailed,
    Interrupted,
)
