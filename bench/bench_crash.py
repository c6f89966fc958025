"""The full crash sweep: kill `reconcile apply` at every boundary x every occurrence, resume.

The boundaries are the driver's steps (`BOUNDARIES`) and its journal batch commits
(`JOURNAL_BOUNDARIES`: `journal.commit` kills just before the n-th commit of held records,
losing them, `journal.committed` just after it); `--batches` sweeps only the commits.

For each kill point (boundary name, n-th occurrence) a fresh 5-box demo fleet
(metric gates off, soak 0.2 s) runs `reconcile apply --yes` as a process with
RECONCILER_CRASH_AT=<boundary>:<n>; two scenarios: a clean rollout, and one where
a wave-2 box crashes on reload (so the run rolls back, reaching restore.* and
incident). Then `reconcile resume` runs once (with the journal kept, or deleted:
`--journal`), and every box must be on
the old or the new config with file sha == stamp sha == loaded sha, alive, with
no lease left ("unknown" otherwise), and its old config file still in history
("lost" otherwise). A boundary's sweep ends at the first n the run never reaches.

    .venv/bin/python bench/bench_crash.py [--only apply.write] [--scenario clean]
    .venv/bin/python bench/bench_crash.py --batches --journal kept   # every batch boundary

Prints one JSON line: kill points tried, boxes left unknown (target 0), configs lost
(target 0), and the failures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.driver import BOUNDARIES, JOURNAL_BOUNDARIES
from reconciler.engine.session import Request, read_source
from reconciler.model.box import parse_stamp
from reconciler.rollout.preflight import desired_of
from reconciler.testing.console import crashing_command, reconcile_script
from reconciler.testing.fleetrepo import without_gates


async def _cli(*args: str, crash_at: str | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECONCILER_CRASH_AT"}
    command = [reconcile_script()]
    if crash_at:
        env["RECONCILER_CRASH_AT"] = crash_at
        command = crashing_command()
    proc = await asyncio.create_subprocess_exec(
        *command, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


async def one_point(root: Path, boundary: str, n: int, faulted: bool, lose_journal: bool) -> dict:
    """Kill at (boundary, n); resume; judge every box. `reached` False: no kill happened."""
    async with DemoFleet.start(root / "demo", 5, tick_s=0.1, rate=20.0) as fleet:
        without_gates(fleet.repo)
        old = {n_: _sha(fleet.box(n_).path(fleet.box(n_).paths.config)) for n_ in fleet.names}
        new = {a: d.sha for a, d in desired_of(read_source(Request(repo=fleet.repo)).repo).items()}
        if faulted:
            fleet.box(fleet.tier("fast")[-1].name).fault("crash-on-reload")
        state = root / "state"
        code, _ = await _cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
                               "--state-dir", str(state), crash_at=f"{boundary}:{n}")  # fmt: skip
        if code != -9:
            return {"reached": False}
        if lose_journal:
            shutil.rmtree(state, ignore_errors=True)
        rcode, rerr = await _cli("resume", "--repo", str(fleet.repo), "--state-dir", str(state))
        unknown, lost = [], []
        for name in fleet.names:
            box = fleet.box(name)
            f = _sha(box.path(box.paths.config))
            st = box.path(box.paths.stamp)
            s = parse_stamp(st.read_bytes()).config_sha256 if st.exists() else None
            ok = (
                f == s == box.agent.loaded_sha
                and f in (old[name], new[name])
                and box.agent.crashed is None
                and not box.path(box.paths.lease_dir).exists()
            )
            if not ok:
                unknown.append(name)
            if not box.path(box.paths.history_file(old[name] or "-")).exists():
                lost.append(name)
        return {"reached": True, "unknown": unknown, "lost": lost, "resume_exit": rcode,
                "detail": rerr[-400:] if unknown or lost else ""}  # fmt: skip


async def sweep(
    only: str | None, scenarios: list[str], journals: tuple[bool, ...], batches: bool = False
) -> dict:
    tried, unknown, lost, failures = 0, 0, 0, []
    start = time.monotonic()
    names = JOURNAL_BOUNDARIES if batches else (*BOUNDARIES, *JOURNAL_BOUNDARIES)
    for scenario in scenarios:
        for boundary in names:
            if only and boundary != only:
                continue
            n, reached = 1, True
            while reached:
                for lose in journals:
                    with tempfile.TemporaryDirectory() as tmp:
                        r = await one_point(Path(tmp), boundary, n, scenario == "rollback",
                                            lose_journal=lose)  # fmt: skip
                    if not r["reached"]:
                        reached = False
                        break
                    tried += 1
                    unknown += len(r["unknown"])
                    lost += len(r["lost"])
                    where = {"at": f"{boundary}:{n}", "scenario": scenario, "journal_lost": lose}
                    if r["unknown"] or r["lost"]:
                        failures.append({**where, **r})
                    print(f"{scenario:8} {boundary}:{n} journal {'lost' if lose else 'kept'} "
                          f"unknown={r['unknown']} lost={r['lost']}", file=sys.stderr,
                          flush=True)  # fmt: skip
                n += 1
    return {"bench": "crash", "kill_points_tried": tried, "boxes_left_unknown": unknown,
            "configs_lost": lost, "seconds": round(time.monotonic() - start, 1),
            "failures": failures}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one boundary name")
    ap.add_argument(
        "--batches",
        action="store_true",
        help="only the journal's batch commits (just before and just after each)",
    )
    ap.add_argument("--scenario", choices=["clean", "rollback"], action="append")
    ap.add_argument(
        "--journal",
        choices=["both", "kept", "lost"],
        default="both",
        help="resume with the journal kept, with it deleted, or each point both ways",
    )
    a = ap.parse_args()
    journals = {"both": (False, True), "kept": (False,), "lost": (True,)}[a.journal]
    scenarios = a.scenario or ["clean", "rollback"]
    print(json.dumps(asyncio.run(sweep(a.only, scenarios, journals, a.batches))))


if __name__ == "__main__":
    main()
