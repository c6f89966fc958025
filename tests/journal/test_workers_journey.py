"""Journeys: one rollout spread over worker processes through a real PostgreSQL (issue 18).

The demo fleet as `reconcile demo up` starts it (its own fleet.yaml: gates on, short
soak). `apply --workers 2 --state URL` is the coordinator; its two `reconcile worker`
processes claim the box operations and run them. Checked on every box: the end state,
and that the workers (not the coordinator) wrote it; a failed wave is rolled back by the
workers; a standing-by worker in its own clone (another machine) joins a rollout; a worker
refuses a coordinator of another version or revision.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from reconciler import __version__
from reconciler.config.repo import load_repo
from reconciler.journal.base import Holder
from reconciler.journal.pgwork import WorkQueue
from reconciler.journal.postgres import PostgresJournal
from reconciler.plan import make_plan
from reconciler.repo import work_tree
from reconciler.testing.journeys import Background, assert_converged, demo_fleet, explained
from reconciler.testing.postgres import PASSWORD, PgServer

pytestmark = pytest.mark.timeout(300)

SOAK = "2"  # short: the journey is about who does the work; gates and watchdog stay on


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("workers") / "demo", 8) as fleet:
        yield fleet


@pytest.fixture
def url(pg_server: PgServer, monkeypatch) -> str:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return pg_server.url(pg_server.create_database().rsplit("/", 1)[-1], password=False)


def _finished(events: list[dict]) -> dict:
    done = [e for e in events if e.get("event") == "workers.finished"]
    assert done, "no workers.finished event"
    return done[-1]


def _workers_line(events: list[dict]) -> list[dict]:
    return _finished(events)["workers"]


def test_two_workers_apply_every_box_and_the_coordinator_none(demo, url, tmp_path):
    head = demo.commit_tier_config("fast", "prompt", "Answer in one line.\n", "fast: one line")
    fast = demo.tier("fast")
    run = demo.reconcile(
        "apply", "--yes", "--format", "json", "--soak", SOAK, "--workers", "2", "--state", url,
        "--state-dir", tmp_path / "state", timeout=180,
    )  # fmt: skip
    with explained(run.describe()):
        run.refuse("Traceback")
        run.expect(0)
        assert PASSWORD not in run.output
        assert_converged(demo, head, agents=fast)
        applied = [e for e in run.events if e.get("event") == "box.applied"]
        assert sorted(e["agent"] for e in applied) == sorted(fast)
        assert all(e["worker"].endswith(" worker") for e in applied), applied
        workers = _workers_line(run.events)
        assert len(workers) == 2, workers
        assert sum(w["boxes"] for w in workers) == len(fast), workers
        assert all(w["cpu_s"] > 0 and w["exit_code"] == 0 for w in workers), workers
        assert {w["pid"] for w in workers}.isdisjoint({run.events[0].get("pid")})
        assert _finished(run.events)["coordinator_ran"] == 0


def test_a_standing_worker_in_another_clone_joins_the_rollout(demo, url, tmp_path):
    """`reconcile worker --state URL` standing by in its own clone of the fleet repo (as on a
    second machine: its own checkout, only the URL and the password from the environment)
    runs box operations of the coordinator's rollout beside apply's own worker; every box
    converges and the coordinator's `workers.finished` names the other worker's share."""
    head = demo.commit_tier_config("fast", "prompt", "Answer in three lines.\n", "fast: three")
    fast = demo.tier("fast")
    clone = tmp_path / "machine-b"
    subprocess.run(["git", "clone", "-q", str(demo.repo), str(clone)], check=True)
    with Background("worker", "--repo", clone, "--state", url) as standing:
        run = demo.reconcile(
            "apply", "--yes", "--format", "json", "--soak", SOAK, "--workers", "1",
            "--state", url, "--state-dir", tmp_path / "state", timeout=180,
        )  # fmt: skip
        standing.send(signal.SIGTERM)  # it finishes what it holds (nothing now) and exits
        b = standing.finish(timeout=60)
    with explained(run.describe(), b.describe()):
        run.refuse("Traceback")
        run.expect(0)
        b.expect(0)
        assert_converged(demo, head, agents=fast)
        (served,) = [e for e in b.events if "boxes" in e]  # its one JSON line at the end
        assert served["boxes"] >= 1 and served["rollouts"], served
        finished = _finished(run.events)
        assert finished["elsewhere"] == [{"worker": served["worker"], "boxes": served["boxes"]}]
        local = sum(w["boxes"] for w in finished["workers"])
        assert local + served["boxes"] == len(fast), finished
        applied = {e["agent"]: e["worker"] for e in run.events if e.get("event") == "box.applied"}
        assert sum(w == served["worker"] for w in applied.values()) == served["boxes"], applied


def test_a_failed_wave_is_rolled_back_by_the_workers(demo, url, tmp_path):
    before = demo.head()
    fast = demo.tier("fast")
    demo.fault(fast[-1], "crash-on-reload")
    demo.commit_tier_config("fast", "prompt", "Answer in two lines.\n", "fast: two lines")
    run = demo.reconcile(
        "apply", "--yes", "--format", "json", "--soak", SOAK, "--workers", "2", "--state", url,
        "--state-dir", tmp_path / "state", timeout=180,
    )  # fmt: skip
    demo.clear(fast[-1])
    with explained(run.describe()):
        run.refuse("Traceback")
        run.expect(3)
        assert_converged(demo, before, agents=fast, outcome=None)
        restored = [e for e in run.events if e.get("event") == "box.restored"]
        assert restored and all(e["worker"].endswith(" worker") for e in restored), restored


def test_a_worker_refuses_another_version_and_another_revision(demo, url, tmp_path):
    journal = PostgresJournal(url)
    queue = WorkQueue(url)
    fleet = load_repo(work_tree(demo.repo).files).fleet
    plan = make_plan([], fleet_id=fleet.fleet_id, target_revision="0" * 40,
                     policy=fleet.rollout, gates=fleet.gates, orphans=[])  # fmt: skip
    try:
        rid = journal.begin_rollout(plan, {}, Holder.here())
        queue.announce(rid, fleet_id=fleet.fleet_id, version="0.0.0-elsewhere",
                       revision="0" * 40, options={})  # fmt: skip
        other = journal.begin_rollout(plan, {}, Holder.here())
        queue.announce(other, fleet_id=fleet.fleet_id, version=__version__,
                       revision="0" * 40, options={})  # fmt: skip
    finally:
        queue.close()
        journal.close()
    old = demo.reconcile("worker", "--repo", demo.repo, "--state", url, "--rollout", rid,
                         timeout=60)  # fmt: skip
    wrong = demo.reconcile("worker", "--repo", demo.repo, "--state", url, "--rollout", other,
                           timeout=60)  # fmt: skip
    with explained(old.describe(), wrong.describe()):
        old.expect(1, "0.0.0-elsewhere")
        old.refuse("Traceback")
        wrong.expect(1, "check out 0000000000")
        wrong.refuse("Traceback")
        assert not old.stdout.strip()  # refused: no summary of work done
