"""FakeClock: time moves only when told; sleeps advance it at once and are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.engine.clock import SystemClock
from reconciler.rollout.clock import Clock
from reconciler.testing.clock import EPOCH, FakeClock


async def test_sleep_advances_at_once_and_is_recorded() -> None:
    """Awaiting sleep(600) moves wall and monotonic time by 600s without waiting."""
    clock = FakeClock()
    await clock.sleep(600)
    await clock.sleep(1.5)
    assert clock.now() == EPOCH + timedelta(seconds=601.5)
    assert clock.monotonic() == clock.elapsed == 601.5
    assert clock.sleeps == [600, 1.5]


def test_clock_never_goes_back() -> None:
    """Advancing by a negative amount is refused."""
    with pytest.raises(ValueError, match="does not go back"):
        FakeClock().advance(-1)


def test_naive_start_is_taken_as_utc() -> None:
    """A naive start time is read as UTC, so now() is always timezone-aware."""
    clock = FakeClock(datetime(2026, 5, 1, 12, 0))
    assert clock.now().tzinfo is UTC


def test_both_clocks_fit_the_protocol() -> None:
    """FakeClock and SystemClock both serve as a Clock."""
    clocks: list[Clock] = [FakeClock(), SystemClock()]
    assert all(c.now().tzinfo is not None for c in clocks)
