"""Journey: `reconcile status` on another machine sees a laptop's rollout in the shared state.

The demo fleet as `reconcile demo up` starts it (its own fleet.yaml, gates on, 5 s soak),
with `state:` naming a real PostgreSQL (the password from the environment only). The
laptop's apply (its own --state-dir, `--state URL`) is held in its first wave; `status
--state URL` from another state directory names the laptop's process as the fleet lock's
holder and its rollout as running, in text and JSON. The laptop is killed -9: a plain
`status` (the state from fleet.yaml) says the holder is dead and the rollout was cut short.
A `--state` nothing listens on is one error line, exit 1, never a traceback.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing.journeys import Demo, demo_fleet, explained
from reconciler.testing.ports import closed_port
from reconciler.testing.postgres import PASSWORD, PgServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with demo_fleet(tmp_path_factory.mktemp("pg-status") / "demo", 4) as fleet:
        yield fleet


def test_status_elsewhere_shows_the_laptops_running_rollout_then_that_it_was_cut_short(
    demo: Demo, pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_server.create_database("status_journey")
    url = pg_server.url("status_journey", password=False)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # never in the URL, never in the repo

    def name_state(doc: Any) -> None:
        doc["state"] = url

    demo.commit_yaml("fleet.yaml", name_state, "fleet.yaml: the team's shared state")
    fast = demo.tier("fast")
    for agent in fast:  # hold the laptop in its first wave's reloads
        demo.fault(agent, "slow-reload", 3)
    demo.commit_tier_config("fast", "prompt", "Answer briefly.\n", "tier fast: brief")
    laptop = demo.background(
        "apply", "--yes", "--format", "json", "--state", url, "--state-dir", tmp_path / "laptop"
    )
    ci = ("--state", url, "--state-dir", tmp_path / "ci")
    with laptop:
        rid = laptop.wait_for("rollout.started", timeout=90)["rollout_id"]
        as_json = demo.reconcile("status", "--window", "1", "--format", "json", *ci)
        as_text = demo.reconcile("status", "--window", "1", *ci)
        laptop.send(signal.SIGKILL)
        killed = laptop.finish(timeout=30)
    for agent in fast:
        demo.clear(agent, "slow-reload")

    with explained(killed.describe(), as_json.describe(), as_text.describe()):
        for r in (as_json, as_text):
            r.expect((0, 1, 2)).refuse("Traceback", "error:")
            assert PASSWORD not in r.output
        state = json.loads(as_json.stdout)["state"]
        assert state["where"] == url and state["error"] is None, state
        lock = state["lock"]
        assert lock["rollout_id"] == rid and lock["holder"].endswith(f" pid {laptop.pid}"), lock
        assert lock["dead"] is None, lock
        assert [(r["rollout_id"], r["running"]) for r in state["unfinished"]] == [(rid, True)]
        assert f"fleet lock: held by {lock['holder']}, rollout {rid}" in as_text.stdout
        assert f"rollout {rid} running: " in as_text.stdout

    after = demo.reconcile("status", "--window", "1")  # fleet.yaml `state:` names it
    with explained(after.describe(), killed.describe()):
        after.expect((0, 1, 2)).refuse("Traceback", "error:")
        assert "its holder is dead (its process is gone from this machine)" in after.stdout
        assert f"rollout {rid} cut short: " in after.stdout
        assert "`reconcile resume` continues it" in after.stdout
        assert PASSWORD not in after.output

    nowhere = f"postgresql://reconciler@127.0.0.1:{closed_port()}/reconciler?connect_timeout=3"
    bad = demo.reconcile("status", "--window", "1", "--state", nowhere)
    with explained(bad.describe()):
        bad.expect(1, "error:").refuse("Traceback")
        assert len(bad.stderr.strip().splitlines()) <= 2, bad.stderr
