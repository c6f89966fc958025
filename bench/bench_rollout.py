"""Rollout at scale against the demo fleet: rollout, rollback and revert vs the SSH floor.

For each size (default 200 then 1000) a multi-process demo fleet starts
(`reconcile demo up`'s code path), fleet.yaml's metric gates are dropped (soak
0: nothing to measure) and a change to every agent (_base.yaml retry.backoff_s) is
committed. Then, in one run:

1. floor: bench/floor_ssh.py --write on the same fleet (plain asyncssh, full
   concurrency: read stamp and config, write atomically, reload, read the stamp);
2. rollout: `reconcile apply --yes --soak 0` in 4 waves [1, 5, 25%, 100%]:
   total and per-wave time (from the JSON event lines as they arrive);
3. revert: `git revert` of the change, applied: every box restores from its own
   history (no config bytes sent), still in waves; its time from the commit;
4. rollback: a second change (temperature) with one box of the last wave
   crashing on reload: the time to roll every changed box back.

CPU seconds and peak RSS are the reconcile process's (getrusage of children).
Prints one JSON line per size. Targets: rollout of 1,000 within 2x the floor;
rollback and revert within 1.5x; under 400 MB RSS; revert of 200 under 10 s.

    .venv/bin/python bench/bench_rollout.py [N ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reconciler.demo import control, runner
from reconciler.demo.faults import FaultKind
from reconciler.journal.sqlite import SqliteJournal
from reconciler.testing.fleetrepo import without_gates

HERE = Path(__file__).resolve().parent
RECONCILE = str(Path(sys.executable).parent / "reconcile")


def git(repo: Path, *args: str) -> str:
    g = ["git", "-c", "user.name=b", "-c", "user.email=b@localhost"]
    subprocess.run([*g, *args], cwd=repo, check=True, capture_output=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def edit(repo: Path, rel: str, old: str, new: str, message: str) -> str:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return git(repo, "commit", "-qam", message)


def children_usage() -> tuple[float, float]:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime, u.ru_maxrss / 1024


def reconcile(*args: str) -> dict[str, Any]:
    """Run reconcile with --format json; wall time, wave times, exit code, CPU of the child."""
    cpu0, _ = children_usage()
    t0 = time.perf_counter()
    proc = subprocess.Popen([RECONCILE, *args, "--format", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    waves: dict[int, float] = {}
    marks: dict[str, float] = {}
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        now = time.perf_counter() - t0
        if ev.get("event") == "wave.started":
            waves[int(ev["wave"])] = now
        marks.setdefault(str(ev.get("event")), now)
        marks[f"last:{ev.get('event')}"] = now
    err = proc.stderr.read() if proc.stderr else ""
    code = proc.wait()
    total = time.perf_counter() - t0
    cpu1, rss = children_usage()
    ends = [*sorted(waves.items()), (0, marks.get("rollout.finished", total))]
    per_wave = {w: round(ends[i + 1][1] - t, 3) for i, (w, t) in enumerate(sorted(waves.items()))}
    return {"exit": code, "seconds": round(total, 3), "per_wave_s": per_wave,
            "cpu_s": round(cpu1 - cpu0, 2), "peak_rss_mb": round(rss, 1),
            "marks": marks, "stderr_tail": err[-600:] if code not in (0, 3) else ""}  # fmt: skip


def floor(repo: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / "floor_ssh.py"), "--fleet", str(repo),
                          "--write"], check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def last_summary(state: Path) -> dict[str, Any]:
    j = SqliteJournal(state)
    try:
        rec = j.history(limit=1)[0]
        return dict(rec.summary or {})
    finally:
        j.close()


def bench(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        root = Path(tmp)
        runner.up(root / "demo", n, tick_s=1.0)
        try:
            repo = root / "demo" / "fleet"
            state = root / "state"
            common = ("--repo", str(repo), "--state-dir", str(state))
            without_gates(repo)
            # Bring the fleet to the head first (the demo's own change), so the bench's
            # change touches every box from one common revision.
            first = reconcile("apply", *common, "--yes", "--soak", "0")
            # retry.backoff_s: no shard or tier sets its own (log_level: eu-west does, so a
            # third of the agents would not change).
            base = edit(repo, "agents/_base.yaml", "    backoff_s: 2\n", "    backoff_s: 3\n",
                        "bench: every agent backs off 3 s")  # fmt: skip
            fl = floor(repo)
            roll = reconcile("apply", *common, "--yes", "--soak", "0")
            git(repo, "revert", "--no-edit", base)
            rev = reconcile("apply", *common, "--yes", "--soak", "0")
            rev_summary = last_summary(state)
            edit(repo, "agents/_base.yaml", "temperature: 0.2", "temperature: 0.3",
                 "bench: a change that crashes one box")  # fmt: skip
            plan = subprocess.run([RECONCILE, "apply", *common, "--dry-run", "--format", "json"],
                                  check=True, capture_output=True, text=True).stdout  # fmt: skip
            victim = json.loads(plan)["waves"][-1]["agents"][-1]  # in the last wave
            control.inject(root / "demo", victim, FaultKind("crash-on-reload"))
            back = reconcile("apply", *common, "--yes", "--soak", "0")
            back_summary = last_summary(state)
        finally:
            runner.down(root / "demo")
    f = fl["seconds"]
    rb = back_summary.get("time_to_roll_back_s")
    return {
        "bench": "rollout", "n": n, "floor_write_s": f,
        "warmup_apply_s": first["seconds"],
        "rollout_s": roll["seconds"], "rollout_exit": roll["exit"],
        "rollout_per_wave_s": roll["per_wave_s"], "rollout_vs_floor": round(roll["seconds"] / f, 2),
        "revert_s": rev["seconds"], "revert_exit": rev["exit"],
        "revert_vs_floor": round(rev["seconds"] / f, 2),
        "revert_from_commit_s": rev_summary.get("time_from_commit_s"),
        "revert_restored_from_history": rev_summary.get("restored_from_history"),
        "rollback_exit": back["exit"], "rollback_total_s": back["seconds"],
        "rollback_s": rb, "rollback_vs_floor": round(rb / f, 2) if rb else None,
        "cpu_s": {"rollout": roll["cpu_s"], "revert": rev["cpu_s"], "rollback": back["cpu_s"]},
        "peak_rss_mb": max(roll["peak_rss_mb"], rev["peak_rss_mb"], back["peak_rss_mb"]),
        "errors": [x["stderr_tail"] for x in (first, roll, rev, back) if x["stderr_tail"]],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    a = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for n in a.sizes:
        print(json.dumps(bench(n)), flush=True)


if __name__ == "__main__":
    main()
