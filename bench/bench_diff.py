"""Live diff and status over N demo boxes against the SSH floor, in one run. JSON lines.

For each size: `reconcile demo up` (worker processes), then, each as its own
process so that CPU and peak RSS are the reconciler's alone (os.wait4):
bench/floor_ssh.py --fleet DIR/fleet (plain asyncssh, same host-key checking,
full concurrency: connect, SFTP, read stamp and config of every box),
`reconcile diff --repo DIR/fleet --format json`, and `reconcile status
--window W --format json`. Then `demo down`. Wall is the whole process (Python
start-up included) for all three, so the ratio live-diff/floor is like for like;
the floor's own in-process figure is printed too.

    .venv/bin/python bench/bench_diff.py 200 1000
Targets: live diff of 1,000 boxes within 1.5x of the floor, under 300 MB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reconciler.demo import runner

HERE = Path(__file__).resolve().parent
RECONCILE = str(Path(sys.executable).parent / "reconcile")


def run_child(what: str, n: int, argv: list[str]) -> tuple[dict[str, Any], str]:
    """Run argv to completion: wall, CPU (user+sys) and peak RSS of that process (wait4)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, with its own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    return {
        "bench": what,
        "n": n,
        "exit": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }, text


def bench(n: int, window: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
        root = Path(tmp) / "D"
        runner.up(root, n)
        repo = str(root / "fleet")
        try:
            time.sleep(2)  # let the workers settle after start-up
            floor, out = run_child(
                "floor_ssh", n, [sys.executable, str(HERE / "floor_ssh.py"), "--fleet", repo]
            )
            inner = json.loads(out.strip().splitlines()[-1])
            floor.update(ok=inner["ok"], failed=inner["failed"], inner_s=inner["seconds"])
            rows.append(floor)
            print(json.dumps(floor), flush=True)

            diff, out = run_child(
                "live_diff", n, [RECONCILE, "diff", "--repo", repo, "--format", "json"]
            )
            summary = json.loads(out)["summary"]
            diff.update(
                changed=summary["changed"],
                unknown=summary["unknown"],
                unchanged=summary["unchanged"],
            )
            diff["ratio_to_floor"] = round(diff["wall_s"] / floor["wall_s"], 2)
            diff["cpu_ratio_to_floor"] = round(diff["cpu_s"] / floor["cpu_s"], 2)
            rows.append(diff)
            print(json.dumps(diff), flush=True)

            status, out = run_child(
                "status", n,
                [RECONCILE, "status", "--repo", repo, "--window", str(window), "--format", "json"],
            )  # fmt: skip
            doc = json.loads(out)
            status.update(window_s=window, totals=doc["totals"], unreadable=sum(
                1 for a in doc["agents"] if a["state"] == "unknown"))  # fmt: skip
            status["ratio_to_floor_plus_window"] = round(
                status["wall_s"] / (floor["wall_s"] + window), 2
            )
            rows.append(status)
            print(json.dumps(status), flush=True)
        finally:
            runner.down(root)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--window", type=float, default=1.0, help="status --window seconds")
    a = parser.parse_args()
    for n in a.sizes:
        bench(n, a.window)


if __name__ == "__main__":
    main()
