"""Journey: a laptop and a fresh CI runner share one PostgreSQL state (`--state`).

The demo fleet as `reconcile demo up` starts it (its own fleet.yaml: gates on, 5 s soak).
The laptop's apply (its own --state-dir, the shared --state) is killed -9 in the middle of
its first wave; a CI runner that has only the URL (another --state-dir, the password from
the environment) sees the laptop's rollout in `history` from the journal, and its plain
`apply` takes the lock at once (the laptop's session dropped with it), resumes that
rollout from the journal and converges the fleet.
"""

from __future__ import annotations

import json
import signal

import pytest

from reconciler.testing.journeys import assert_converged, demo_fleet, explained
from reconciler.testing.postgres import PASSWORD, PgServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("pg-journey") / "demo", 4) as fleet:
        yield fleet


def test_a_ci_runner_resumes_the_killed_laptops_rollout_from_the_shared_journal(
    demo, pg_server: PgServer, tmp_path, monkeypatch
):
    pg_server.create_database("journey")
    url = pg_server.url("journey", password=False)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # never in the URL, never in the repo
    fast = demo.tier("fast")
    for agent in fast:  # hold the laptop in its first wave's reloads
        demo.fault(agent, "slow-reload", 3)
    head = demo.commit_tier_config("fast", "prompt", "Answer briefly.\n", "tier fast: brief")
    laptop = demo.background(
        "apply", "--yes", "--format", "json", "--state", url, "--state-dir", tmp_path / "laptop"
    )
    with laptop:
        started = laptop.wait_for("rollout.started", timeout=90)
        rid = started["rollout_id"]
        seen = demo.reconcile(
            "history", "--format", "json", "--state", url, "--state-dir", tmp_path / "ci"
        )
        laptop.send(signal.SIGKILL)
        killed = laptop.finish(timeout=30)
    for agent in fast:
        demo.clear(agent, "slow-reload")
    with explained(killed.describe(), seen.describe()):
        seen.expect(0)
        rows = json.loads(seen.stdout)
        rows = rows["rollouts"] if isinstance(rows, dict) else rows
        mine = [r for r in rows if r["rollout_id"] == rid]
        assert mine and mine[0]["source"] == "journal", rows
        assert mine[0]["outcome"] == "unfinished", mine
        assert PASSWORD not in seen.output

    then = demo.reconcile(
        "apply", "--yes", "--format", "json", "--state", url, "--state-dir", tmp_path / "ci",
        timeout=150,
    )  # fmt: skip
    with explained("the CI runner's apply:", then.describe(), killed.describe()):
        then.refuse(r"Traceback")
        then.expect(0)
        assert PASSWORD not in then.output
        assert_converged(demo, head, agents=fast)
        after = demo.reconcile("history", "--format", "json", "--state", url)
        rows = json.loads(after.stdout)
        rows = rows["rollouts"] if isinstance(rows, dict) else rows
        assert any(r["rollout_id"] == rid and r["outcome"] != "unfinished" for r in rows), rows
