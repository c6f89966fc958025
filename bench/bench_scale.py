"""Scale (issue 18): how many demo boxes this machine holds, then rollouts by 1, 2 and 4 workers.

1. Capacity. The limits: RLIMIT_NOFILE (the soft limit is raised to the hard one),
   the ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), MemAvailable,
   and the demo's own MAX_AGENTS. What a box costs is measured on two small demo
   fleets (--calibrate, default 25 and 100 boxes, one demo process each), each given a
   change to every agent and `reconcile apply` (in-process, PostgreSQL) while a sampler
   reads /proc every 50 ms: the demo processes' RSS and fds, the apply process's fds,
   and the TCP sockets to the fleet's ports (client side, TIME_WAIT included, and the
   distinct local ports they hold). Per box = the slope between the two fleets (so an
   interpreter's base is not charged to its boxes); the fixed part is kept as a base.
   The largest N is the least of: file descriptors of the one process holding every
   box's client connections (the in-process rollout, or one worker); ports (two
   listeners per box, exclusive; client sockets share local ports across destinations,
   so they get a fixed reserve); memory (demo + client per box, bases for the demo
   processes, the apply and 4 workers, 512 MiB for PostgreSQL, 10% headroom); the
   demo's MAX_AGENTS; 10,000 (and --max-n). It prints which one caps N and why.
2. A real PostgreSQL (reconciler.testing.postgres.PgServer, stopped in `finally`), one
   database per fleet; for each N a multi-process demo fleet (runner.up, as bench_rollout
   and bench_status start theirs), its metric gates dropped (soak 0: nothing to measure;
   `without_gates` is for benchmarks only), brought to one revision with one in-process
   apply (a calibration fleet is that apply; --quick runs on its calibration fleets).
3. For each N (default 1000 and the largest N) and each worker count (default 1 2 4;
   0 = no --workers flag: today's in-process rollout): a change to every agent
   (_base.yaml retry.backoff_s + 1) committed, the raw write floor measured on the same fleet
   (bench/floor_ssh.py --write), then `reconcile apply --yes --soak 0 --format json
   --state URL [--workers W]`. Wall time and its ratio to the floor; CPU per box: the
   apply process tree's total (os.wait4: includes its reaped children), each worker's
   (the `workers.finished` JSON line, from getrusage in the worker; without that line
   only the total), the coordinator's = total - workers; the floor's CPU per box.

Targets printed beside the figures: coordinator CPU/box <= 10 ms and constant as N
grows; total reconciler CPU/box <= 2x the floor's. One JSON line per run on stdout (and
one for the capacity), then a readable table. Asserts no time.

    .venv/bin/python bench/bench_scale.py                  # capacity, 1000 and largest N, 1/2/4
    .venv/bin/python bench/bench_scale.py --quick          # N=50 and 200, workers 0 and 1, < 3 min
    .venv/bin/python bench/bench_scale.py --capacity-only
    .venv/bin/python bench/bench_scale.py --sizes 1000 --workers 0 1 2 4 --max-n 3000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_rollout import RECONCILE, edit

from reconciler.demo import runner
from reconciler.demo.build import MAX_AGENTS
from reconciler.testing.fleetrepo import without_gates
from reconciler.testing.postgres import PASSWORD, PgServer

HERE = Path(__file__).resolve().parent
CEILING = 10_000
PG_RESERVE_MB = 512
CLIENT_PORT_RESERVE = 1024  # local ports left for client sockets once the listeners are bound
MAX_WORKERS_SIZED = 4  # memory is sized for a coordinator and this many workers
COORD_TARGET_MS = 10.0
WARM_UP_ATTEMPTS = 3  # a warm-up rolled back (a box judged dead under load) is run again
CPU_VS_FLOOR_TARGET = 2.0
_TCP_LIVE_STATES = {"01", "02", "03", "04", "05", "07", "08", "09", "0B"}  # not TIME_WAIT/LISTEN


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- running things


@dataclass
class Ran:
    """A child process run to its end: exit, wall, rusage of its tree, its JSON event lines."""

    exit: int
    seconds: float
    cpu_s: float
    maxrss_mb: float
    events: list[dict[str, Any]]
    stdout_tail: str
    stderr_tail: str


def run_tree(argv: list[str], env: dict[str, str] | None = None, watch: Any = None) -> Ran:
    """Run `argv`; CPU and peak RSS from os.wait4 (the child and the children it reaped)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf, text=True, env=env)
        if watch is not None:
            watch.start(proc.pid)
        assert proc.stdout is not None
        events: list[dict[str, Any]] = []
        tail: list[str] = []
        try:
            for line in proc.stdout:
                tail = [*tail[-20:], line]
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        events.append(json.loads(line))
        except BaseException:  # the bench is stopped: so is the child, before its fleet
            proc.terminate()  # an apply stops between boxes; killed if it takes too long
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        if watch is not None:
            watch.stop()
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    return Ran(proc.returncode, round(seconds, 3), ru.ru_utime + ru.ru_stime,
               ru.ru_maxrss / 1024, events, "".join(tail)[-600:], err[-800:])  # fmt: skip


def kind(ev: dict[str, Any]) -> str:
    return str(ev.get("event") or ev.get("kind") or "")


def failure(events: list[dict[str, Any]]) -> str:
    """The first event that says why a rollout did not finish clean ('' when none did)."""
    for ev in events:
        k = kind(ev)
        if k.endswith((".failed", ".refused")) or "rollback" in k:
            return json.dumps(ev)[:400]
    return ""


def change_every_agent(repo: Path) -> str:
    """Raise _base.yaml's retry.backoff_s by one and commit: every agent's config changes,
    to a value no earlier revision had (so even after a rolled-back run every box is written).

    Not log_level: shards/eu-west.yaml sets its own, so a third of the agents would not
    change (bench_profile chose backoff_s for the same reason).
    """
    text = (repo / "agents" / "_base.yaml").read_text(encoding="utf-8")
    found = re.search(r"^    backoff_s: (\d+)$", text, re.MULTILINE)
    assert found, "agents/_base.yaml has no retry.backoff_s"
    old, new = found.group(0), f"    backoff_s: {int(found.group(1)) + 1}"
    return edit(repo, "agents/_base.yaml", old, new, f"bench_scale: every agent {new.strip()}")


def apply_argv(repo: Path, state: list[str], workers: int, *more: str) -> list[str]:
    extra = [*(["--workers", str(workers)] if workers > 0 else []), *more]
    return [RECONCILE, "apply", "--repo", str(repo), *state, "--yes", "--soak", "0",
            "--format", "json", *extra]  # fmt: skip


# ---------------------------------------------------------------------------- /proc sampling


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def client_sockets(fleet_ports: set[int]) -> tuple[int, int, int]:
    """TCP sockets whose remote port is one of the fleet's: live ones, all (TIME_WAIT too),
    and the distinct local ports they hold (Linux shares one across destinations)."""
    live = every = 0
    local: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[2].rsplit(":", 1)[1], 16) not in fleet_ports:
                continue
            every += 1
            live += f[3] in _TCP_LIVE_STATES
            local.add(int(f[1].rsplit(":", 1)[1], 16))
    return live, every, len(local)


@dataclass
class Sampler:
    """Peaks, sampled every 50 ms while a child runs: demo RSS/fds, the child's fds, sockets."""

    demo_pids: list[int]
    fleet_ports: set[int]
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self, child: int | None) -> None:
        live, every, ports = client_sockets(self.fleet_ports)
        now = {
            "demo_rss_mb": sum(rss_mb(p) for p in self.demo_pids),
            "demo_fds": float(sum(fd_count(p) for p in self.demo_pids)),
            "client_fds": float(fd_count(child)) if child else 0.0,
            "client_conns": float(live),
            "client_sockets": float(every),
            "client_ports": float(ports),
        }
        for k, v in now.items():
            self.peaks[k] = max(self.peaks.get(k, 0.0), v)

    def start(self, child: int) -> None:
        def loop() -> None:
            while not self._stop.wait(0.05):
                self.sample(child)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample(None)  # the demo after the rollout (its RSS may have grown)


# ---------------------------------------------------------------------------- capacity


def limits() -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = {ln.split(":")[0]: int(ln.split()[1]) // 1024 for ln in meminfo}
    return {
        "nofile_soft_was": soft, "nofile_hard": hard,
        "file_max": int(Path("/proc/sys/fs/file-max").read_text()),
        "port_range": [lo, hi], "ports": hi - lo + 1,
        "mem_total_mb": mem["MemTotal"], "mem_available_mb": mem["MemAvailable"],
        "cores": os.cpu_count(), "demo_max_agents": MAX_AGENTS,
    }  # fmt: skip


class WarmUpFailed(RuntimeError):
    """The fleet could not be brought to one revision: its size is skipped."""


@dataclass
class Fleet:
    """A running demo fleet of `n`, its gates dropped, with its own database on the server."""

    n: int
    tmp: tempfile.TemporaryDirectory[str]
    up: runner.UpResult
    state: list[str]
    env: dict[str, str]

    @property
    def root(self) -> Path:
        return Path(self.tmp.name) / "demo"

    @property
    def repo(self) -> Path:
        return self.root / "fleet"

    def close(self) -> None:
        try:
            runner.down(self.root)
        finally:
            self.tmp.cleanup()


def open_fleet(n: int, demo_procs: int, pg: PgServer) -> Fleet:
    db = f"scale_{n}_{os.urandom(3).hex()}"
    pg.create_database(db)
    tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
    t0 = time.perf_counter()
    try:
        up = runner.up(Path(tmp.name) / "demo", n, workers=demo_procs, timeout_s=600)
    except BaseException:
        tmp.cleanup()
        raise
    say(f"demo up {n} in {len(up.workers)} process(es): {time.perf_counter() - t0:.1f}s")
    fleet = Fleet(n, tmp, up, ["--state", pg.url(db, password=False)],
                  {**os.environ, "PGPASSWORD": PASSWORD})  # fmt: skip
    try:
        without_gates(fleet.repo)
    except BaseException:
        fleet.close()
        raise
    return fleet


def warm_up(fleet: Fleet, sample: bool) -> dict[str, float] | None:
    """Bring every box to one revision (the head's own change and one to every agent), in
    process; with `sample`, what the rollout cost in RSS, fds and sockets (a calibration)."""
    sampler = None
    idle: dict[str, float] = {}
    if sample:
        agents = fleet.up.info.agents.values()
        ports = {p for a in agents for p in (a["ssh_port"], a["http_port"])}
        sampler = Sampler(fleet.up.workers, ports)
        sampler.sample(None)
        idle = dict(sampler.peaks)
    change_every_agent(fleet.repo)
    for attempt in range(1, WARM_UP_ATTEMPTS + 1):
        again = ("--force",) if attempt > 1 else ()  # the head it rolled back, once more
        argv = apply_argv(fleet.repo, fleet.state, 0, *again)
        ran = run_tree(argv, env=fleet.env, watch=sampler)
        say(f"warm-up apply {fleet.n}: exit {ran.exit}, {ran.seconds:.1f}s {failure(ran.events)}")
        if ran.exit == 0:
            break
        if attempt == WARM_UP_ATTEMPTS:
            raise WarmUpFailed(f"bench_scale: the warm-up apply of {fleet.n} exited {ran.exit} "
                               f"{WARM_UP_ATTEMPTS} times: {failure(ran.events)}\n"
                               f"{ran.stderr_tail}")  # fmt: skip
        if sampler is not None:
            sampler = Sampler(sampler.demo_pids, sampler.fleet_ports)  # measure a clean one
            sampler.sample(None)
    if sampler is None:
        return None
    return {"n": fleet.n, "idle_demo_rss_mb": idle["demo_rss_mb"],
            "idle_demo_fds": idle["demo_fds"], **sampler.peaks,
            "client_rss_mb": ran.maxrss_mb, "apply_s": ran.seconds}  # fmt: skip


def slope(a: dict[str, float], b: dict[str, float], key: str) -> tuple[float, float]:
    """Per box and base of `key` between two calibration fleets (per box at least 0)."""
    per = max((b[key] - a[key]) / (b["n"] - a["n"]), 0.0)
    return round(per, 4), round(max(b[key] - per * b["n"], 0.0), 1)


def capacity(lim: dict[str, Any], cal: list[dict[str, float]], max_n: int | None) -> dict[str, Any]:
    a, b = cal
    per: dict[str, float] = {}
    base: dict[str, float] = {}
    for key in ("demo_rss_mb", "client_rss_mb", "demo_fds", "client_fds", "client_conns",
                "client_sockets", "client_ports"):  # fmt: skip
        per[key], base[key] = slope(a, b, key)
    hard = lim["nofile_hard"]
    caps: dict[str, tuple[int, str]] = {}
    c_fd = max(per["client_fds"], per["client_conns"], 1e-3)
    caps["fds"] = (
        int((hard - base["client_fds"] - 64) / c_fd),
        f"one process holds every box's client connections ({c_fd:.2f} fd/box measured, "
        f"base {base['client_fds']:.0f}) under RLIMIT_NOFILE {hard} (root could raise the hard "
        f"limit to fs.nr_open); the demo side is spread over more demo processes "
        f"({per['demo_fds']:.2f} fd/box)",
    )
    caps["ports"] = (
        int((lim["ports"] - CLIENT_PORT_RESERVE) / 2),
        f"{lim['ports']} ephemeral ports ({lim['port_range'][0]}-{lim['port_range'][1]}) - "
        f"{CLIENT_PORT_RESERVE} for clients / 2 listeners per box (exclusive: a connect never"
        f" takes a listener's port). The rollout's {per['client_sockets']:.2f} client sockets"
        f" per box at its peak (TIME_WAIT too; {per['client_ports']:.2f} distinct local ports"
        " while ports are plentiful) share local ports across destinations (only the 4-tuple"
        " must be unique), so they do not scale the port need",
    )
    mb_per_box = per["demo_rss_mb"] + per["client_rss_mb"]
    demo_procs = demo_processes(CEILING, per["demo_fds"], hard)
    bases = base["demo_rss_mb"] * demo_procs + base["client_rss_mb"] * (1 + MAX_WORKERS_SIZED)
    usable = lim["mem_available_mb"] * 0.9 - PG_RESERVE_MB - bases
    caps["memory"] = (
        int(usable / max(mb_per_box, 1e-3)),
        f"{lim['mem_available_mb']} MB available (90% used) - {PG_RESERVE_MB} MB PostgreSQL - "
        f"{bases:.0f} MB process bases / {mb_per_box:.3f} MB per box "
        f"(demo {per['demo_rss_mb']:.3f} + reconciler {per['client_rss_mb']:.3f})",
    )
    caps["demo"] = (MAX_AGENTS, "reconciler/demo/build.py MAX_AGENTS: `demo up` refuses more")
    caps["ceiling"] = (CEILING, "the benchmark's ceiling (issue 18: 10,000)")
    if max_n is not None:
        caps["--max-n"] = (max_n, "asked for on the command line")
    by, (largest, why) = min(caps.items(), key=lambda kv: kv[1][0])
    return {
        "bench": "scale.capacity", **lim, "calibration": cal, "per_box": per, "base": base,
        "caps": {k: v[0] for k, v in caps.items()}, "largest_n": largest, "capped_by": by,
        "why": why, "machine_n": min(caps[k][0] for k in ("fds", "ports", "memory")),
        "demo_processes_at_largest": demo_processes(largest, per["demo_fds"], hard),
        "reasons": {k: v[1] for k, v in caps.items()},
    }  # fmt: skip


def demo_processes(n: int, fds_per_box: float, hard: int) -> int:
    """Demo processes for `n` boxes: runner's default, more when one would pass RLIMIT_NOFILE."""
    return max(runner.default_workers(n), math.ceil(n * max(fds_per_box, 4) / (hard - 256)))


def show_capacity(cap: dict[str, Any]) -> None:
    per = cap["per_box"]
    lines = [
        f"capacity: {cap['cores']} cores, {cap['mem_total_mb']} MB "
        f"({cap['mem_available_mb']} available), RLIMIT_NOFILE {cap['nofile_soft_was']} -> "
        f"{cap['nofile_hard']} (hard), ports {cap['port_range'][0]}-{cap['port_range'][1]}",
        f"  per box: demo {per['demo_rss_mb']:.3f} MB RSS, {per['demo_fds']:.2f} fds; "
        f"reconciler {per['client_rss_mb']:.3f} MB, {per['client_fds']:.2f} fds, "
        f"{per['client_conns']:.2f} live connections, {per['client_sockets']:.2f} client sockets "
        f"(TIME_WAIT too) on {per['client_ports']:.2f} distinct local ports",
    ]
    for k, v in sorted(cap["caps"].items(), key=lambda kv: kv[1]):
        lines.append(f"  {k:>8}: N <= {v:>7,}  {cap['reasons'][k]}")
    lines.append(f"  largest N = {cap['largest_n']:,}, capped by {cap['capped_by']}: {cap['why']}")
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------- rollouts


def worker_figures(events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    for ev in reversed(events):
        if kind(ev) == "workers.finished":
            return [dict(w) for w in ev.get("workers", [])]
    return None


def one_run(n: int, w: int, repo: Path, state: list[str], env: dict[str, str]) -> dict[str, Any]:
    change_every_agent(repo)
    fl = run_tree([sys.executable, str(HERE / "floor_ssh.py"), "--fleet", str(repo), "--write"])
    floor = json.loads(fl.stdout_tail.strip().splitlines()[-1]) if fl.exit == 0 else {}
    ran = run_tree(apply_argv(repo, state, w), env=env)
    workers = worker_figures(ran.events)
    total = ran.cpu_s
    outside = False
    coord = total
    if workers is not None:
        wsum = sum(float(x.get("cpu_s", 0.0)) for x in workers)
        if wsum > total:  # the workers were not the apply's reaped children
            outside, total = True, total + wsum
        coord = total - wsum
    f_s, f_cpu = floor.get("seconds"), floor.get("cpu_seconds")
    ms = 1000 / n
    finished = [e for e in ran.events if kind(e) == "rollout.finished"]
    return {
        "bench": "scale", "n": n, "workers": w, "exit": ran.exit,
        "outcome": finished[-1].get("outcome") if finished else None,
        "floor_s": f_s, "floor_ok": floor.get("ok"), "apply_s": ran.seconds,
        "vs_floor": round(ran.seconds / f_s, 2) if f_s else None,
        "cpu_total_s": round(total, 2), "cpu_total_ms_per_box": round(total * ms, 2),
        "cpu_coordinator_ms_per_box": round(coord * ms, 2),
        "cpu_workers": workers, "workers_line": workers is not None,
        "workers_outside_tree": outside,
        "cpu_worker_ms_per_box": [round(float(x.get("cpu_s", 0.0)) * ms, 2) for x in workers or []],
        "worker_boxes": [x.get("boxes") for x in workers or []],
        # box operations the coordinator ran itself (nobody claimed them in time)
        "coordinator_boxes": n - sum(int(x.get("boxes", 0)) for x in workers or []),
        "floor_cpu_ms_per_box": round(f_cpu * ms, 2) if f_cpu else None,
        "floor_process_cpu_ms_per_box": round(fl.cpu_s * ms, 2),
        "cpu_vs_floor": round(total / f_cpu, 2) if f_cpu else None,
        "apply_peak_rss_mb": round(ran.maxrss_mb, 1),
        "targets": {"coordinator_ms_per_box_max": COORD_TARGET_MS,
                    "cpu_vs_floor_max": CPU_VS_FLOOR_TARGET},
        "failure": failure(ran.events),
        "error": "" if ran.exit == 0 else (ran.stderr_tail or ran.stdout_tail),
        "floor_error": "" if fl.exit == 0 else fl.stderr_tail,
    }  # fmt: skip


def bench_size(fleet: Fleet, workers: list[int]) -> list[dict[str, Any]]:
    """One run per worker count on `fleet` (warmed up): one JSON line each."""
    rows = []
    for w in workers:
        row = one_run(fleet.n, w, fleet.repo, fleet.state, fleet.env)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def show_table(rows: list[dict[str, Any]]) -> None:
    head = ("N", "W", "floor s", "apply s", "x floor", "CPU ms/box", "coord ms/box (boxes run)",
            "workers ms/box (boxes run)", "floor ms/box", "CPU x floor", "exit")  # fmt: skip
    out = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        pairs = zip(r["cpu_worker_ms_per_box"], r["worker_boxes"], strict=True)
        wk = ", ".join(f"{x:g} ({b})" for x, b in pairs) or "-"
        known = r["workers_line"] or r["workers"] == 0
        coord = f"{r['cpu_coordinator_ms_per_box']:g} ({r['coordinator_boxes']})" if known else "-"
        out.append(" | ".join(str(x) for x in (
            f"{r['n']:,}", r["workers"], r["floor_s"], r["apply_s"], r["vs_floor"],
            r["cpu_total_ms_per_box"], coord, wk, r["floor_cpu_ms_per_box"], r["cpu_vs_floor"],
            r["exit"])))  # fmt: skip
    out.append(f"targets: coordinator CPU/box <= {COORD_TARGET_MS:g} ms and constant as N grows; "
               f"total CPU/box <= {CPU_VS_FLOOR_TARGET:g}x the floor's. W=0: in-process (no "
               "--workers), the coordinator is the whole apply; '-': no workers.finished line, "
               "only the total is known")  # fmt: skip
    print("\n".join(out), flush=True)


def has_workers_flag() -> bool:
    done = subprocess.run([RECONCILE, "apply", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False)  # fmt: skip
    return re.search(r"--workers\b", done.stdout) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[-5:]))  # fmt: skip
    ap.add_argument("--sizes", type=int, nargs="+", help="fleet sizes (default: 1000, largest N)")
    ap.add_argument(
        "--workers", type=int, nargs="+", help="worker counts; 0 = in-process (default 1 2 4)"
    )
    ap.add_argument("--max-n", type=int, help="cap the largest N further (a quick run)")
    ap.add_argument("--calibrate", type=int, nargs=2, metavar=("N1", "N2"),
                    help="calibration fleets (default 25 100; --quick: 50 200)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="N=50 and 200, workers 0 and 1")
    ap.add_argument("--capacity-only", action="store_true", help="print the capacity and stop")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally blocks run on a kill
    t0 = time.perf_counter()
    lim = limits()
    asked = a.sizes or ([50, 200] if a.quick else [])
    calibrate = sorted(a.calibrate or ([50, 200] if a.quick else [25, 100]))
    fleets: dict[int, Fleet] = {}
    rows: list[dict[str, Any]] = []
    pg = PgServer.start()
    try:
        cal = []
        for n in calibrate:  # one demo process each: its base is one interpreter's
            fleets[n] = open_fleet(n, 1, pg)
            cal.append(warm_up(fleets[n], sample=True))
            if n not in asked or a.capacity_only:  # else it is reused below
                fleets.pop(n).close()
        cap = capacity(lim, [c for c in cal if c], a.max_n)
        print(json.dumps(cap), flush=True)
        show_capacity(cap)
        if a.capacity_only:
            return
        largest = cap["largest_n"]
        sizes = asked or sorted({min(1000, largest), largest})
        workers = a.workers or ([0, 1] if a.quick else [1, 2, 4])
        if any(n > largest for n in sizes):
            raise SystemExit(f"bench_scale: --sizes {sizes}: this machine holds {largest:,} "
                             f"({cap['capped_by']}: {cap['why']})")  # fmt: skip
        if any(w > 0 for w in workers) and not has_workers_flag():
            say("bench_scale: `reconcile apply` has no --workers in this build; "
                f"running only workers=0 (asked for {workers})")  # fmt: skip
            workers = [0]
        for n in sizes:
            if n not in fleets:
                procs = demo_processes(n, cap["per_box"]["demo_fds"], lim["nofile_hard"])
                fleets[n] = open_fleet(n, procs, pg)
                try:
                    warm_up(fleets[n], sample=False)
                except WarmUpFailed as exc:
                    say(f"{exc}\nN={n} skipped")
                    fleets.pop(n).close()
                    continue
            rows += bench_size(fleets[n], workers)
            fleets.pop(n).close()
    finally:
        for f in fleets.values():
            f.close()
        pg.stop()
    show_table(rows)
    say(f"bench_scale: {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
