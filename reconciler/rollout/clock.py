"""Time as a value handed in: the `Clock` seam, and the system clock for the driver.

The pure core never reads the time: the machine takes none, the watchdog takes
`now`. Only the driver holds a clock, so soak timers and stall windows are
testable without sleeping (`reconciler.testing.clock.FakeClock`). This module
is the edge: it is not imported by the machine, watchdog or plan.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
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


class SystemClock:
    """The real clock: datetime.now(UTC), time.monotonic(), asyncio.sleep()."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
