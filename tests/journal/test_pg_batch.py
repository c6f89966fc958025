"""The shared journal's batches (the durability boundary of journal/base.py): inside
`batch()` records wait in one transaction for `commit()`; a killed run loses only the
records since its last commit, and `begin_rollout`, `finish` and `take_fence` are never held.
"""

from __future__ import annotations

from plan.builders import fleet_changes, plan_of

from reconciler.journal import Holder
from reconciler.journal.postgres import PostgresJournal
from reconciler.rollout import Outcome, Started

from .conftest import empty

HOLDER = Holder(user="alice", host="laptop", pid=1)


def test_records_wait_for_the_commit_and_a_kill_loses_only_the_uncommitted(
    pg_module_url: str,
) -> None:
    empty(pg_module_url)
    writer, reader = PostgresJournal(pg_module_url), PostgresJournal(pg_module_url)
    try:
        with writer.batch():
            rid = writer.begin_rollout(plan_of(fleet_changes(2)), {}, HOLDER)
            assert reader.rollout(rid).rollout_id == rid  # never held
            writer.record_event(rid, Started(parallel=2))
            assert writer.held == 1
            assert reader.replay(rid) == []  # not committed: another machine sees nothing
            assert writer.replay(rid) == [Started(parallel=2)]  # its own session does
            assert writer.commit() == 1
            assert reader.replay(rid) == [Started(parallel=2)]
            writer.record_event(rid, Started(parallel=10))
            assert writer.take_fence("acme", 0) == 1  # never held: commits the event with it
            assert writer.held == 0
            writer.record_event(rid, Started(parallel=11))
            writer._conn.close()  # the process dies: its open transaction is rolled back
            assert reader.replay(rid) == [Started(parallel=2), Started(parallel=10)]
            writer._batches = 0  # a dead process never leaves its batch
    finally:
        reader.close()
        writer.close()


def test_leaving_the_batch_commits_and_finish_is_never_held(pg_module_url: str) -> None:
    empty(pg_module_url)
    writer, reader = PostgresJournal(pg_module_url), PostgresJournal(pg_module_url)
    try:
        rid = writer.begin_rollout(plan_of(fleet_changes(2)), {}, HOLDER)
        with writer.batch():
            writer.record_event(rid, Started(parallel=2))
            with writer.batch():  # nested: one batch
                writer.record_event(rid, Started(parallel=10))
            assert reader.replay(rid) == []
        assert reader.replay(rid) == [Started(parallel=2), Started(parallel=10)]
        assert writer.held == 0
        with writer.batch():
            writer.record_event(rid, Started(parallel=11))
            writer.finish(rid, Outcome.DONE, {"boxes": 2})
            assert reader.rollout(rid).outcome is Outcome.DONE
            assert len(reader.replay(rid)) == 3
    finally:
        reader.close()
        writer.close()
