"""Demo fleet at scale: start time, idle CPU and peak RSS for 200 and 1,000 boxes.

For each size, `reconcile demo up`'s code path (`runner.up`: ports, keys, the
git config repo, seeded boxes, worker processes) starts the fleet in a temp
dir; then every box's /healthz is fetched once (all must answer), one box is
reached over SSH, the workers' CPU is measured over an idle window, and the
fleet is stopped with `runner.down` (which checks that every port closed).

Prints one JSON line per size; asserts no time. Targets: 200 boxes start in
under 10 s and idle under half a core; 1,000 boxes run on 2 cores.

Usage: .venv/bin/python bench/bench_demo.py [--idle-s S] [N ...]   (default: 200 1000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import asyncssh
import httpx

from reconciler.demo import runner
from reconciler.demo.runner import FleetInfo

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _all_healthy(info: FleetInfo) -> tuple[float, int]:
    """Seconds to fetch every box's /healthz once, and how many said alive."""
    started = time.monotonic()
    # One connection per box: keep-alive would only fill httpx's pool with idle connections to
    # other origins (which makes it slow past a few hundred hosts); a semaphore bounds the
    # requests in flight, rather than queueing 1,000 of them inside the pool.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    sem = asyncio.Semaphore(64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(port: int) -> bool:
            async with sem:
                r = await client.get(f"http://127.0.0.1:{port}/healthz")
            return bool(r.status_code == 200 and r.json()["alive"])

        alive = await asyncio.gather(*(one(a["http_port"]) for a in info.agents.values()))
    return time.monotonic() - started, sum(alive)


async def _ssh_once(info: FleetInfo) -> float:
    name = next(iter(info.agents))
    started = time.monotonic()
    async with asyncssh.connect(
        "127.0.0.1",
        port=info.agents[name]["ssh_port"],
        username=info.doc["user"],
        client_keys=[str(info.dir.key)],
        known_hosts=str(info.dir.known_hosts),
    ) as conn:
        done = await conn.run("agentctl health", check=True)
        assert json.loads(str(done.stdout))["alive"]
    return time.monotonic() - started


def bench(n: int, idle_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        root = Path(tmp) / "D"
        up = runner.up(root, n)
        try:
            health_s, alive = asyncio.run(_all_healthy(up.info))
            ssh_s = asyncio.run(_ssh_once(up.info))
            time.sleep(2)  # let the first ticks and the scrape settle
            before = {pid: _cpu_ticks(pid) for pid in up.workers}
            t0 = time.monotonic()
            time.sleep(idle_s)
            window = time.monotonic() - t0
            cpu = sum(_cpu_ticks(pid) - before[pid] for pid in up.workers) / TICK / window
            rss = sum(_peak_rss_kib(pid) for pid in up.workers)
        finally:
            t1 = time.monotonic()
            down = runner.down(root)
            down_s = time.monotonic() - t1
    return {
        "what": "demo_fleet",
        "n": n,
        "workers": len(up.workers),
        "start_s": round(up.seconds, 2),
        "all_health_s": round(health_s, 2),
        "alive": alive,
        "ssh_connect_run_s": round(ssh_s, 3),
        "idle_cpu_cores": round(cpu, 3),
        "idle_window_s": round(window, 1),
        "peak_rss_mib_workers": round(rss / 1024, 1),
        "peak_rss_mib_setup": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "down_s": round(down_s, 2),
        "ports_left_open": len(down.open_ports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    for n in args.sizes:
        print(json.dumps(bench(n, args.idle_s)), flush=True)


if __name__ == "__main__":
    main()
