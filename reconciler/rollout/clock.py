"""Time as a value handed in: the `Clock` seam.

The pure core never reads the time: the machine takes none, the watchdog takes
`now`. Only the engine holds a clock, so soak timers and stall windows are
testable without sleeping (`reconciler.testing.clock.FakeClock`); the real one is
`reconciler.engine.clock.SystemClock`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Where a rollout gets the time and waits: wall time, a monotonic timer, a sleep."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for timeouts and durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (a fake clock just advances)."""
        ...
