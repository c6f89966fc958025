"""FakeClock: a `Clock` that moves only when told, so soak and stall logic is tested without sleep.

`sleep()` advances the clock at once and records the wait; `advance()` moves it
by hand. Both wall time and the monotonic timer move together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock for tests: starts at `start` (default 2026-01-01T00:00:00Z) and never moves alone.

    Args:
        start: the initial wall time (naive times are taken as UTC).
    """

    __slots__ = ("_elapsed", "_start", "sleeps")

    def __init__(self, start: datetime = EPOCH) -> None:
        self._start = start if start.tzinfo else start.replace(tzinfo=UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (never back)."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds}s)")
        self._elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait and advance the clock by it, at once."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return self._elapsed
