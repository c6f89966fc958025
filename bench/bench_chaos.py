"""Chaos at scale: kill -9 of a worker or of the coordinator at random points, N trials.

The trials of tests/journal/test_chaos.py (reconciler/testing/chaos.py says how each
is judged) on a bigger demo fleet (default 1,000 boxes, `reconcile demo up`'s own
fleet.yaml) with a real PostgreSQL (started here as the postgres user, stopped at the
end) and two workers. The metric gates are dropped and the soak is 0 unless `--gates`
(as bench_rollout does: at 1,000 boxes on two shared cores a gated soak costs minutes a
trial and measures the demo's load, not the kill); the watchdog stays on, and the CI
test (tests/journal/test_chaos.py) runs the trials with the gates. Targets alternate worker,
coordinator. Prints one JSON line per trial as it ends, then a summary line:
boxes unknown, double writes, the most sessions ever seen holding the fleet lock,
trials that converged with one more apply. Targets: 0, 0, 1, all.

    .venv/bin/python bench/bench_chaos.py [--boxes 1000] [--trials 50] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from reconciler.testing.chaos import TARGETS, trial
from reconciler.testing.fleetrepo import without_gates
from reconciler.testing.journeys import demo_fleet
from reconciler.testing.postgres import PASSWORD, PgServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--soak", default=None, help="seconds (default: 1 with --gates, else 0)")
    ap.add_argument("--gates", action="store_true", help="keep fleet.yaml's metric gates")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.environ["PGPASSWORD"] = PASSWORD
    server = PgServer.start()
    began = time.monotonic()
    trials = []
    try:
        url = server.url(server.create_database().rsplit("/", 1)[-1], password=False)
        tmp = tempfile.mkdtemp(prefix="bench-chaos-")
        with demo_fleet(Path(tmp) / "demo", args.boxes) as demo:
            if not args.gates:
                without_gates(demo.repo)
            soak = args.soak or ("1" if args.gates else "0")
            print(json.dumps({"boxes": args.boxes, "trials": args.trials, "seed": seed,
                              "workers": args.workers, "gates": args.gates,
                              "soak": soak}), flush=True)  # fmt: skip
            for i in range(args.trials):
                t = trial(demo, url, Path(tmp) / "state", i, rng,
                          target=TARGETS[i % 2], workers=args.workers, soak=soak,
                          timeout=1800)  # fmt: skip
                trials.append(t)
                print(t.line(), flush=True)
    finally:
        server.stop()
        summary = {
            "summary": True, "boxes": args.boxes, "seed": seed, "trials": len(trials),
            "ok": sum(t.ok for t in trials),
            "unknown_boxes": sum(len(t.unknown) for t in trials),
            "double_writes": sum(len(t.double_writes) for t in trials),
            "lock_max_holders": max((t.lock_max_holders for t in trials), default=0),
            "converged": sum(t.converged for t in trials),
            "reassigned": sum(t.reassigned for t in trials),
            "minutes": round((time.monotonic() - began) / 60, 1),
        }  # fmt: skip
        print(json.dumps(summary), flush=True)
    return 0 if trials and all(t.ok for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
