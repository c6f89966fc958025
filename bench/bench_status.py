"""A `status --watch` refresh of N demo boxes against a warm read floor, in one run. JSON lines.

For each size: `reconcile demo up` (runner.up), then in this process one StatusSession
(app/status.py: the connections it opens stay open across refreshes), its first refresh
(cold: connects every box, scrapes the metrics twice over --window), then R rounds of,
alternately, the warm read floor and a refresh:

- floor: over the same open connections, every box's live state (`FleetLink.read`: stamp,
  config, health) and one metrics scrape, concurrently: the least any refresh must do;
- refresh: `StatusSession.refresh()`: the same reads, rates against the previous refresh's
  scrape, the orphan check, judging every agent and building the report.

Prints one JSON line per size (medians, and the ratio refresh/floor); asserts no time.
Target: a refresh of 1,000 boxes within 1.5x of the floor.

Usage: .venv/bin/python bench/bench_status.py [--rounds R] [--window W] [N ...]
       (default: 200 1000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reconciler.app.status import StatusRequest, StatusSession, scope
from reconciler.demo import runner


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _measure(repo: Path, rounds: int, window: float) -> dict[str, Any]:
    chosen = scope(StatusRequest(repo, "", window))
    floors: list[float] = []
    refreshes: list[float] = []
    async with StatusSession(chosen) as session:
        t0 = time.perf_counter()
        first = await session.refresh()
        cold = time.perf_counter() - t0
        _say(f"first refresh {cold:.2f}s: {first.totals}")
        for _ in range(rounds):
            t0 = time.perf_counter()
            live_task = asyncio.create_task(
                session.link.read(chosen.agents, chosen.repo.fleet.fleet_id, session.key)
            )
            await session.link.scrape(chosen.agents)
            await live_task
            floors.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            last = await session.refresh()
            refreshes.append(time.perf_counter() - t0)
            _say(f"floor {floors[-1]:.2f}s refresh {refreshes[-1]:.2f}s")
    floor, refresh = statistics.median(floors), statistics.median(refreshes)
    return {
        "cold_first_refresh_s": round(cold, 3),
        "window_s": window,
        "floor_s": round(floor, 3),
        "refresh_s": round(refresh, 3),
        "ratio": round(refresh / floor, 2),
        "floor_all_s": [round(x, 3) for x in floors],
        "refresh_all_s": [round(x, 3) for x in refreshes],
        "totals_first": first.totals,
        "totals_last": last.totals,
        "unreadable": sum(1 for a in last.agents if a.state == "unknown"),
    }


def bench(n: int, rounds: int, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        root = Path(tmp) / "D"
        t0 = time.perf_counter()
        runner.up(root, n)
        _say(f"demo up {n}: {time.perf_counter() - t0:.1f}s")
        try:
            time.sleep(2)  # let the workers settle after start-up
            row = {"bench": "status_refresh", "n": n, "rounds": rounds}
            row.update(asyncio.run(_measure(root / "fleet", rounds, window)))
        finally:
            runner.down(root)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--rounds", type=int, default=5, help="floor/refresh pairs")
    parser.add_argument("--window", type=float, default=1.0, help="the first refresh's window")
    a = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `demo down` runs on a kill too
    for n in a.sizes:
        bench(n, a.rounds, a.window)


if __name__ == "__main__":
    main()
