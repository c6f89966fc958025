"""A lease dir without its file: a take in progress (left alone) or one cut short (broken).

A release killed between removing the lease file and the dir leaves such a dir too;
resume (without a journal to say whose it is) waits out the take window, then breaks it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.boxops import LEASE_FILE, TORN_FRESH_S, BoxHandle, break_torn
from reconciler.transport.fake import FakeBox

from .helpers import agent_of


def _box(now: list[float]) -> tuple[FakeBox, BoxHandle]:
    agent = agent_of("us-east-fast-001")
    box = FakeBox(agent.name, config_path=agent.config_path, files={agent.config_path: b"{}"},
                  now=lambda: now[0])  # fmt: skip
    return box, BoxHandle(agent, box, box.fetch_health)


async def test_a_young_torn_dir_is_left_for_its_taker_an_old_one_is_broken() -> None:
    now = [1_000_000.0]
    box, h = _box(now)
    assert await box.mkdir(h.paths.lease_dir)  # a take (or a release) cut short
    young = datetime.fromtimestamp(now[0] + 1, UTC)
    assert not await break_torn(h, young)
    assert await box.stat(h.paths.lease_dir) is not None
    old = datetime.fromtimestamp(now[0] + TORN_FRESH_S + 1, UTC)
    assert await break_torn(h, old)
    assert await box.stat(h.paths.lease_dir) is None


async def test_a_dir_that_got_its_lease_file_is_never_broken() -> None:
    now = [1_000_000.0]
    box, h = _box(now)
    assert await box.mkdir(h.paths.lease_dir)
    await box.write_atomic(h.paths.lease_dir / LEASE_FILE, b'{"holder": "x"}')
    late = datetime.fromtimestamp(now[0] + 10 * TORN_FRESH_S, UTC)
    assert not await break_torn(h, late)
    assert await box.read_file(h.paths.lease_dir / LEASE_FILE) is not None
