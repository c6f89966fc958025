"""The backend's fence counter: take_fence(fleet, floor) = max(counter, floor) + 1, atomically,
on both backends (tests/journal/conftest.py)."""

from __future__ import annotations

import threading

from .conftest import Backend


def test_numbers_rise_above_the_floor_and_never_repeat(backend: Backend) -> None:
    journal = backend.journal()
    try:
        assert journal.take_fence("acme", 0) == 1
        assert journal.take_fence("acme", 0) == 2
        assert journal.take_fence("acme", 10) == 11  # the boxes showed a higher number
        assert journal.take_fence("acme", 3) == 12  # stamps reset: the counter still rises
        assert journal.take_fence("other", 0) == 1  # one counter per fleet
    finally:
        journal.close()
    again = backend.journal()  # it is durable
    try:
        assert again.take_fence("acme", 0) == 13
    finally:
        again.close()


def test_concurrent_takers_never_get_the_same_number(backend: Backend) -> None:
    """Four connections (as four processes would have) take 25 numbers each: 100 distinct."""
    backend.journal().close()
    got: list[int] = []
    guard = threading.Lock()

    def taker() -> None:
        journal = backend.journal()
        try:
            mine = [journal.take_fence("acme", 0) for _ in range(25)]
        finally:
            journal.close()
        with guard:
            got.extend(mine)

    threads = [threading.Thread(target=taker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 101))
