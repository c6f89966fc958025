"""Chaos in CI: kill -9 of a worker or of the coordinator at random points (issue 18).

Five trials on a 50-box demo fleet (its own fleet.yaml: gates on; a 1 s soak keeps the
trials short, the watchdog and gates still judge every wave) with two workers and a
real PostgreSQL: every box is on the old or the new revision after each kill, no box is
written by two live processes, the fleet lock is never held by two sessions, and one
more `apply` converges the fleet. reconciler/testing/chaos.py says how each is judged;
bench/bench_chaos.py runs the same trials at 1,000 boxes.
"""

from __future__ import annotations

import os
import random

import pytest

from reconciler.testing.chaos import trial
from reconciler.testing.journeys import demo_fleet
from reconciler.testing.postgres import PASSWORD, PgServer

pytestmark = pytest.mark.timeout(900)

TARGETS = ("worker", "coordinator", "worker", "coordinator", "worker")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("chaos") / "demo", 50) as fleet:
        yield fleet


def test_kill_9_of_a_worker_or_the_coordinator_loses_nothing(
    demo, pg_server: PgServer, tmp_path, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = pg_server.url(pg_server.create_database().rsplit("/", 1)[-1], password=False)
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    trials = []
    for i, target in enumerate(TARGETS):
        t = trial(demo, url, tmp_path / "state", i, rng, target=target, timeout=300)
        print(t.line())
        trials.append(t)
    bad = [t.line() for t in trials if not t.ok]
    assert not bad, f"seed {seed}:\n" + "\n".join(bad)
    # a killed local worker is still counted as apply's own, not as a worker elsewhere
    assert not [t.line() for t in trials if t.elsewhere], f"seed {seed}"
