"""Chaos trials for rollouts spread over workers: kill -9 a worker or the coordinator mid-rollout.

One trial, on a running demo fleet and a real PostgreSQL state:

1. a change to every agent is committed (agents/_base.yaml `retry.backoff_s` + 1);
2. `reconcile apply --yes --workers W --state URL` starts (gates on, a short soak);
3. after a random number of boxes were applied (and a random pause), `kill -9` lands
   on one of its worker processes or on the coordinator itself;
4. once the killed run (or, for the coordinator, its orphaned workers) is over, every box
   is read: each must be on the old or the new revision, file == stamp == loaded
   (a lease left behind is allowed here: the next apply settles it), else it is *unknown*;
5. one more `reconcile apply --yes --workers W` must exit 0 with every box consistent on
   the new revision (*converged*); when the killed run's watchdog or gates blocked the
   revision (a verdict, not a kill's doing: boxes too slow on a loaded machine), that
   apply is refused and one with `--force` is run instead (the trial says `forced`).

Throughout, a sampler reads `pg_locks` every 20 ms: the fleet's advisory lock is never
held by two sessions. From the journal: a *double write* is a box whose config was
written (an `apply.write` intent) in one rollout by two processes of which the first was
not the one killed: only a dead worker's box is ever taken over.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from reconciler.journal.pglock import advisory_key
from reconciler.testing.journeys import FLEET_ID, Background, Demo, JourneyError, run

TARGETS = ("worker", "coordinator")


@dataclass
class Trial:
    """One trial's figures."""

    index: int
    target: str  # worker | coordinator
    killed_after_boxes: int = 0
    killed_pid: int = 0
    run_exit: int | None = None  # the killed run's exit (None: the coordinator was killed)
    unknown: list[str] = field(default_factory=list)
    double_writes: list[str] = field(default_factory=list)
    lock_max_holders: int = 0
    reassigned: int = 0  # box operations claimed again after their worker died
    converge_exit: int | None = None
    # The killed run's watchdog or gates condemned the revision (a verdict, e.g. boxes too
    # slow to answer on a loaded machine): the converging apply needed --force.
    forced: bool = False
    converged: bool = False
    not_converged: list[str] = field(default_factory=list)
    # workers the killed run's `workers.finished` called "elsewhere" (a worker kill: its
    # own killed worker must not be one of them)
    elsewhere: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.unknown and not self.double_writes and self.lock_max_holders <= 1
            and self.converged and not self.error
        )  # fmt: skip

    def line(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        for key in ("unknown", "double_writes", "not_converged"):
            data[key] = data[key][:5]
        return json.dumps(data, sort_keys=True)


class LockWatch:
    """Samples how many sessions hold the fleet's advisory lock (pg_locks), every 20 ms."""

    def __init__(self, url: str, fleet_id: str) -> None:
        key = advisory_key(fleet_id) & 0xFFFFFFFFFFFFFFFF
        self.classid, self.objid = key >> 32, key & 0xFFFFFFFF
        self.url = url
        self.max_holders = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                    (self.classid, self.objid),
                ).fetchone()
                self.max_holders = max(self.max_holders, int(str(row[0])) if row else 0)
                self.samples += 1
                self._stop.wait(0.02)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _pid_of(holder: str | None) -> int | None:
    if not holder or " pid " not in holder:
        return None
    return int(holder.split(" pid ")[1].split()[0])


def double_writes(url: str, rollout_id: str, killed: int) -> tuple[list[str], int]:
    """Boxes written by two processes in `rollout_id` where the first was not `killed`;
    and how many box operations were claimed again."""
    writers: dict[str, list[int | None]] = defaultdict(list)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT agent, body FROM steps WHERE rollout_id = %s AND kind = 'intent' ORDER BY seq",
            (rollout_id,),
        ).fetchall()
        again = conn.execute(
            "SELECT count(*) FROM box_work WHERE rollout_id = %s AND attempts > 1", (rollout_id,)
        ).fetchone()
    for agent, body in rows:
        data = json.loads(str(body)).get("data", {})
        if data.get("boundary") != "apply.write":
            continue
        who = _pid_of(data.get("by"))
        if not writers[str(agent)] or writers[str(agent)][-1] != who:
            writers[str(agent)].append(who)
    bad = [
        f"{agent}: written by {ws}" for agent, ws in sorted(writers.items())
        if len(ws) > 1 and any(w != killed for w in ws[:-1])
    ]  # fmt: skip
    return bad, int(str(again[0])) if again else 0


def _wait_boxes(bg: Background, k: int, timeout: float) -> int:
    """Wait until `k` boxes were applied (0: the first wave started); how many were."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = bg.events
        applied = sum(1 for e in events if e.get("event") == "box.applied")
        started = any(e.get("event") == "wave.started" for e in events)
        if started and applied >= k:
            return applied
        if bg.proc.poll() is not None:
            raise JourneyError(f"the rollout ended before {k} boxes\n{bg.snapshot().describe()}")
        time.sleep(0.1)  # each look parses every line so far
    raise JourneyError(f"not {k} boxes applied within {timeout:g}s\n{bg.snapshot().describe()}")


def _kill(bg: Background, t: Trial, rng: random.Random, timeout: float) -> None:
    """kill -9 one of the run's workers (then let the run end) or the coordinator (then
    wait until its orphaned workers left)."""
    pids = children(bg.pid)
    if t.target == "worker":
        live = [p for p in pids if _alive(p)]
        if not live:
            raise JourneyError("no worker process to kill")
        t.killed_pid = rng.choice(live)
        os.kill(t.killed_pid, signal.SIGKILL)
        done = bg.finish(timeout=timeout)
        t.run_exit = done.rc
        for ev in done.events:
            if ev.get("event") == "workers.finished":
                t.elsewhere = [str(w.get("worker")) for w in ev.get("elsewhere") or []]
        return
    t.killed_pid = bg.pid
    bg.send(signal.SIGKILL)
    bg.finish(timeout=30)
    if not _gone(pids, 120):
        raise JourneyError(f"the killed coordinator's workers {pids} did not leave")


def _bump(demo: Demo, index: int) -> str:
    def change(doc: Any) -> None:
        retry = doc["config"]["retry"]
        retry["backoff_s"] = int(retry["backoff_s"]) + 1

    return demo.commit_yaml("agents/_base.yaml", change, f"chaos trial {index}: backoff + 1")


def trial(
    demo: Demo,
    url: str,
    state_dir: Path,
    index: int,
    rng: random.Random,
    *,
    target: str,
    workers: int = 2,
    soak: str = "1",
    timeout: float = 600.0,
) -> Trial:
    """One trial (see the module docstring); failures are in the result, not raised."""
    t = Trial(index, target)
    began = time.monotonic()
    old = demo.head()
    new = _bump(demo, index)
    common = ("--yes", "--format", "json", "--state", url, "--state-dir", str(state_dir),
              "--workers", str(workers), "--repo", str(demo.repo))  # fmt: skip
    try:
        with LockWatch(url, FLEET_ID) as watch, Background("apply", *common, "--soak", soak) as bg:
            started = bg.wait_for("rollout.started", timeout=timeout)
            rid = str(started["rollout_id"])
            k = rng.randrange(0, max(1, len(demo.agents) - 1))
            t.killed_after_boxes = _wait_boxes(bg, k, timeout)
            time.sleep(rng.uniform(0.0, 0.3))
            _kill(bg, t, rng, timeout)
            for name, truth in demo.truths().items():
                bad = [p for p in truth.problems() if p != "lease dir left behind"]
                if truth.revision not in (old, new) or bad:
                    t.unknown.append(f"{name}: rev {truth.revision}: {'; '.join(bad)}")
            t.double_writes, t.reassigned = double_writes(url, rid, t.killed_pid)
            then = run("apply", *common, "--soak", soak, timeout=timeout)
            if then.rc == 1 and "--force" in then.stderr:  # the revision was blocked
                t.forced = True
                then = run("apply", *common, "--soak", soak, "--force", timeout=timeout)
            t.converge_exit = then.rc
            t.lock_max_holders = watch.max_holders
        for name, truth in demo.truths().items():
            bad = truth.problems()
            if truth.revision != new or bad:
                t.not_converged.append(f"{name}: rev {truth.revision}: {'; '.join(bad)}")
        t.converged = t.converge_exit == 0 and not t.not_converged
        if t.converge_exit != 0:
            t.error = f"the converging apply exited {t.converge_exit}: {then.stderr[-400:]}"
    except JourneyError as exc:
        t.error = str(exc)[:2000]
    t.seconds = round(time.monotonic() - began, 1)
    return t
