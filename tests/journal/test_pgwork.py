"""The work queue of a rollout spread over workers, on a real PostgreSQL (journal/pgwork.py).

Claims are exclusive (`FOR UPDATE SKIP LOCKED`: many claimers at once never get the same
row), an expired claim is claimed again with a new token, and the first claimer's late
renewal or result is refused; a retired rollout drops its queued work.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import psycopg
import pytest

from reconciler.app.orphanwork import let_workers_finish
from reconciler.config.repo import load_repo
from reconciler.journal.base import Holder
from reconciler.journal.pgwork import WorkQueue
from reconciler.journal.postgres import PostgresJournal
from reconciler.plan import make_plan
from reconciler.repo.files import read_work_tree

from .conftest import empty

EXAMPLE = Path(__file__).resolve().parents[2] / "fleet-config-example"


@pytest.fixture
def rid(pg_module_url: str) -> str:
    empty(pg_module_url)
    fleet = load_repo(read_work_tree(EXAMPLE)).fleet
    plan = make_plan([], fleet_id=fleet.fleet_id, target_revision="a" * 40,
                     policy=fleet.rollout, gates=fleet.gates, orphans=[])  # fmt: skip
    journal = PostgresJournal(pg_module_url)
    try:
        rid = journal.begin_rollout(plan, {}, Holder.here())
    finally:
        journal.close()
    queue = WorkQueue(pg_module_url)
    queue.announce(rid, fleet_id=fleet.fleet_id, version="1", revision="a" * 40, options={})
    queue.close()
    return rid


@pytest.fixture
def queue(pg_module_url: str):
    q = WorkQueue(pg_module_url)
    yield q
    q.close()


def _post(queue: WorkQueue, rid: str, n: int) -> list[int]:
    return [queue.post(rid, f"agent-{i}", "apply", {"n": i}, {}) for i in range(n)]


def test_claimers_at_once_never_share_a_row(pg_module_url: str, rid: str, queue: WorkQueue):
    posted = _post(queue, rid, 60)
    got: dict[str, list[int]] = {}

    def claimer(name: str) -> None:
        q = WorkQueue(pg_module_url)
        mine = got.setdefault(name, [])
        try:
            while (c := q.claim(rid, name, ttl_s=30)) is not None:
                mine.append(c.work_id)
        finally:
            q.close()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [w for ids in got.values() for w in ids]
    assert sorted(every) == sorted(posted)  # each row once, none twice, none left
    assert len(set(every)) == len(every)


def test_an_expired_claim_is_claimed_again_and_the_first_claimer_is_refused(
    rid: str, queue: WorkQueue
):
    [work] = _post(queue, rid, 1)
    first = queue.claim(rid, "w1", ttl_s=0.2)
    assert first is not None and first.work_id == work and first.attempts == 1
    assert queue.claim(rid, "w2", ttl_s=5) is None  # held
    time.sleep(0.4)
    second = queue.claim(rid, "w2", ttl_s=5)
    assert second is not None and second.work_id == work
    assert second.attempts == 2 and second.token != first.token
    assert not queue.renew(first, ttl_s=5)  # w1 stalled past its expiry: not ours now
    assert not queue.finish(first, {"late": True})
    assert queue.renew(second, ttl_s=5)
    assert queue.finish(second, {"ok": True})
    assert queue.results([work]) == {work: {"ok": True}}


def test_the_coordinator_claims_a_row_nobody_took(rid: str, queue: WorkQueue):
    a, b = _post(queue, rid, 2)
    held = queue.claim(rid, "w1", ttl_s=30)
    assert held is not None and held.work_id == a
    assert queue.claim_id(a, "coordinator", ttl_s=30) is None  # a live worker holds it
    mine = queue.claim_id(b, "coordinator", ttl_s=30)
    assert mine is not None and mine.work_id == b
    assert queue.claim(rid, "w2", ttl_s=30) is None


def test_a_retired_rollout_drops_its_queued_work_and_leaves_the_live_list(
    rid: str, queue: WorkQueue
):
    _post(queue, rid, 3)
    assert [c.rollout_id for c in queue.live(None, stale_s=60)] == [rid]
    assert queue.retire(rid) == 3
    assert queue.live(None, stale_s=60) == []
    assert queue.claim(rid, "w1", ttl_s=30) is None
    c = queue.coordinator(rid)
    assert c is not None and c.done


def test_a_silent_coordinator_is_not_live(pg_module_url: str, rid: str, queue: WorkQueue):
    with psycopg.connect(pg_module_url, autocommit=True) as conn:
        conn.execute("UPDATE coordinators SET heartbeat = heartbeat - 60")
    assert queue.live(None, stale_s=10) == []
    queue.beat(rid)
    assert [c.rollout_id for c in queue.live(None, stale_s=10)] == [rid]


async def test_a_settling_run_waits_for_the_dead_coordinators_workers(
    pg_module_url: str, rid: str, queue: WorkQueue
):
    """The coordinator is dead (the settling run holds the lock): its queued work is dropped,
    no worker claims more, and the box a worker still runs is waited for."""
    running, queued = _post(queue, rid, 2)
    held = queue.claim(rid, "w1", ttl_s=30)
    assert held is not None and held.work_id == running
    told: list[str] = []

    async def finish_soon() -> None:
        await asyncio.sleep(1.0)
        assert queue.finish(held, {"event": "done"})

    fleet_id = queue.coordinator(rid).fleet_id  # type: ignore[union-attr]
    finisher = asyncio.ensure_future(finish_soon())
    gone = await let_workers_finish(pg_module_url, fleet_id, wait_s=30, tell=told.append)
    assert finisher.done()  # it returned only once the worker recorded its box
    await finisher
    assert gone == [rid]
    assert told and "1 box operation(s)" in told[0]
    assert queue.results([queued]) == {queued: {"dropped": True}}
    assert queue.claim(rid, "w2", ttl_s=30) is None
    assert queue.coordinator(rid).done  # type: ignore[union-attr]
