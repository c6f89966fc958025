"""A real Prometheus (Debian's package) on a free loopback port scraping the demo boxes each second.

The test writes the config, starts /usr/bin/prometheus with its own data dir,
waits for at least three scrapes of every box, and stops it at the end. No
system service is used. Without the binary the tests skip, except under CI,
where they fail: CI installs it (scripts/test).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.testing.ports import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class Prom:
    """A running Prometheus: its URL and process."""

    url: str
    proc: subprocess.Popen[bytes]

    async def query(self, q: str) -> list[dict[str, object]]:
        async with httpx.AsyncClient(trust_env=False) as c:
            r = await c.get(f"{self.url}/api/v1/query", params={"query": q}, timeout=5)
        r.raise_for_status()
        result = r.json()["data"]["result"]
        assert isinstance(result, list)
        return result

    async def value(self, q: str) -> float:
        got = await self.query(q)
        return float(got[0]["value"][1]) if got else 0.0  # type: ignore[index]

    async def served_queries(self) -> float:
        """Instant queries Prometheus answered, from its own /metrics (its query counter)."""
        async with httpx.AsyncClient(trust_env=False) as c:
            r = await c.get(f"{self.url}/metrics", timeout=5)
        r.raise_for_status()
        total = 0.0
        for line in r.text.splitlines():
            if line.startswith("prometheus_http_requests_total{") and (
                'handler="/api/v1/query"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """Six demo boxes (three of tier fast) at 50 tasks/s each."""
    async with DemoFleet.start(tmp_path / "demo", 6, tick_s=0.05, rate=50.0) as f:
        yield f


@pytest.fixture
async def prometheus(fleet: DemoFleet, tmp_path: Path) -> AsyncIterator[Prom]:
    """Prometheus scraping every demo box each second; at least 3 scrapes done when yielded."""
    if not Path(BINARY).exists():
        if os.environ.get("CI"):
            pytest.fail(f"prometheus not installed at {BINARY}; scripts/test installs it")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    targets = ", ".join(f"'127.0.0.1:{b.http_port}'" for b in fleet.boxes.values())
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: demo\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: [{targets}]\n",
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    prom = Prom(f"http://127.0.0.1:{port}", proc)
    try:
        n = len(fleet.boxes)
        for _ in range(300):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"prometheus exited {proc.returncode}: {err[-2000:]}")
            try:
                scrapes = await prom.query('count_over_time(up{job="demo"}[1m]) >= 3')
                if len(scrapes) == n:
                    break
            except (httpx.HTTPError, KeyError):
                pass
            await asyncio.sleep(0.2)
        else:
            pytest.fail("prometheus did not scrape every demo box 3 times within 60 s")
        yield prom
    finally:
        prom.stop()
