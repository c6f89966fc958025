"""What `reconcile status` reads from the state, on both backends (SQLite, PostgreSQL).

The fleet lock's holder and every rollout begun and not finished: running while a live
holder holds the lock for it, cut short once its holder is gone (a pid no longer alive on
this machine) or the lock is free; finished rollouts are not listed, and the last
finished one's left-behind boxes are still read. The state is found as apply finds it
(fleet.yaml `state:` here; the CLI's --state in tests/journal/test_pg_status_journey.py).
A SQLite state directory without a journal reads as nothing and stays without one.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

from plan.builders import fleet_changes, plan_of
from rich.console import Console

from reconciler.app.status import StateSeen, _reread, read_state
from reconciler.journal import Holder
from reconciler.journal.db import FILE_NAME
from reconciler.journal.urls import shown
from reconciler.model.fleet import FleetFile
from reconciler.report.status import StateOut, StatusReport, change_line, state_lines
from reconciler.rollout import Outcome
from reconciler.status import Color
from reconciler.testing.ports import closed_port
from reconciler.testing.postgres import PASSWORD

from .conftest import Backend

FLEET = "acme-support"  # plan_of's fleet


def _fleet(backend: Backend) -> FleetFile:
    doc: dict[str, object] = {"fleet_id": FLEET, "state_dir": str(backend.path)}
    if backend.url is not None:
        doc["state"] = backend.url  # fleet.yaml `state:`, as a team's repo names it
    return FleetFile.model_validate(doc)


def _gone() -> Holder:
    """A holder on this machine whose process has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return dataclasses.replace(Holder.here(), pid=int(done.stdout))


def _text(report_state: object) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    for line in state_lines(report_state):  # type: ignore[arg-type]
        console.print(line)
    return buf.getvalue()


def test_a_running_rollout_and_its_lock_then_cut_short_once_the_holder_is_gone(
    backend: Backend,
) -> None:
    fleet = _fleet(backend)
    state = backend.state()
    try:
        me = Holder.here()
        done = state.journal.begin_rollout(plan_of(fleet_changes(2)), {}, me)
        state.journal.finish(done, Outcome.DONE, {"left_behind": ["agent-01"]})
        plan = plan_of(fleet_changes(3))
        pre = dict.fromkeys(plan.agents, None)
        rid = state.journal.begin_rollout(plan, pre, me)
        lease = state.lock.bind(state.lock.acquire(FLEET, me, ttl_s=600), rid)

        seen = read_state(fleet, None)
        out = seen.out
        assert out is not None and out.error is None
        assert (seen.left_by, seen.left) == (done, ["agent-01"])
        assert out.where == (shown(backend.url) if backend.url else str(backend.path))
        assert out.lock is not None
        assert (out.lock.lock_id, out.lock.holder, out.lock.rollout_id) == (
            lease.lock_id, str(me), rid,
        )  # fmt: skip
        assert out.lock.dead is None
        (running,) = out.unfinished  # the finished one is not listed
        assert (running.rollout_id, running.running, running.boxes) == (rid, True, 3)
        assert running.target_revision == plan.target_revision
        text = _text(out)
        assert f"fleet lock: held by {me}, rollout {rid}, since " in text
        assert f"rollout {rid} running: revision {plan.target_revision[:12]}, 3 boxes" in text
        assert PASSWORD not in text + out.model_dump_json()  # the URL is shown without it

        # the holder dies (the same lock row, now naming a process that is gone)
        state.lock.force_release(lease.lock_id)
        state.lock.bind(state.lock.acquire(FLEET, _gone(), ttl_s=600), rid)
        out = read_state(fleet, None).out
        assert out is not None and out.lock is not None
        assert out.lock.dead == "its process is gone from this machine"
        assert [r.running for r in out.unfinished] == [False]
        text = _text(out)
        assert "its holder is dead (its process is gone from this machine)" in text
        assert f"rollout {rid} cut short: " in text and "`reconcile resume` continues it" in text
    finally:
        state.close()


def test_a_free_lock_and_no_rollout_read_as_such(backend: Backend) -> None:
    state = backend.state()
    try:
        rid = state.journal.begin_rollout(plan_of(fleet_changes(1)), {}, Holder.here())
        state.journal.finish(rid, Outcome.DONE, {})
    finally:
        state.close()
    out = read_state(_fleet(backend), None).out
    assert out is not None
    assert (out.lock, out.unfinished) == (None, [])
    assert _text(out).strip() == f"fleet lock: free (state {out.where})"


def test_no_journal_reads_as_nothing_and_creates_none(tmp_path: Path) -> None:
    seen = read_state(FleetFile.model_validate({"fleet_id": FLEET}), tmp_path)
    assert seen.out is None and seen.left == []
    assert not (tmp_path / FILE_NAME).exists()


def test_json_carries_the_state_and_a_piped_watch_names_the_running_rollout(
    backend: Backend,
) -> None:
    state = backend.state()
    try:
        me = Holder.here()
        rid = state.journal.begin_rollout(plan_of(fleet_changes(1)), {}, me)
        state.lock.bind(state.lock.acquire(FLEET, me, ttl_s=600), rid)
        out = read_state(_fleet(backend), None).out
    finally:
        state.close()
    report = StatusReport(
        fleet_id=FLEET, checked_at="2026-12-01T10:00:00Z", worst=Color.GREEN, totals={},
        groups=[], versions={}, revisions={}, orphans=[], agents=[], state=out,
    )  # fmt: skip
    doc = StatusReport.model_validate_json(report.model_dump_json())
    assert doc.state == out
    assert doc.state is not None and doc.state.unfinished[0].running
    assert change_line(None, report).endswith(f" running {rid}")


async def test_a_later_refresh_that_cannot_read_the_state_says_so_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    """--watch goes on when the database is gone: the refresh names the state and why, and
    keeps the boxes the last read said were left behind."""
    port = closed_port()
    url = f"postgresql://reconciler@127.0.0.1:{port}/reconciler?connect_timeout=2"
    fleet = FleetFile.model_validate({"fleet_id": FLEET, "state": url, "state_dir": str(tmp_path)})
    was = StateSeen("r-1", ["agent-01"], StateOut(where=shown(url)))
    seen = await _reread(fleet, None, was)
    assert (seen.left_by, seen.left) == ("r-1", ["agent-01"])
    assert seen.out is not None and seen.out.error and seen.out.where == shown(url)
    assert _text(seen.out).startswith(f"state {shown(url)}: not read: ")
