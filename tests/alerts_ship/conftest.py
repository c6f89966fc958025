"""One demo fleet, one SSH box holding a Prometheus rules directory, one real Prometheus.

Started once for the module (tests/journeys style: `reconcile demo up`, and the CLI run
as a subprocess). The Prometheus box is `python -m reconciler.testing.sshserver` (a real
asyncssh SFTP server in its own process, serving this machine's filesystem on loopback):
fleet.yaml `prometheus:` points at it with rules_dir = the directory the real Prometheus
reads its rule files from. Prometheus (Debian's package) scrapes every demo box each
second, with each target's tier as a label (as service discovery would give it), has
--web.enable-lifecycle for POST /-/reload, and evaluates every second. Everything
started here is stopped at the end of the module, failed or not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.testing.journeys import Demo, JourneyError, demo_fleet, wait_until
from reconciler.testing.ports import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"
AGENTS = 6  # three of tier fast, three of tier smart


@dataclass
class Prom:
    """The running Prometheus: its URL, process and rules directory."""

    url: str
    proc: subprocess.Popen[bytes]
    rules_dir: Path

    def get(self, path: str, **params: str) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, timeout=5, trust_env=False)
        r.raise_for_status()
        return r.json()["data"]

    def groups(self) -> dict[str, set[str]]:
        """Loaded rule groups: name -> the reconciler_group_hash labels its rules carry."""
        out: dict[str, set[str]] = {}
        for g in self.get("/api/v1/rules")["groups"]:
            hashes = {r.get("labels", {}).get("reconciler_group_hash") for r in g["rules"]}
            out[g["name"]] = hashes - {None}
        return out

    def firing(self, alert: str) -> list[dict[str, Any]]:
        return [
            a for a in self.get("/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == alert and a["state"] == "firing"
        ]  # fmt: skip

    def rule_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.rules_dir.glob("*.rules.yml"))}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Setup:
    demo: Demo
    prom: Prom
    ssh: dict[str, Any]  # the SSH box: port, key, known_hosts


@pytest.fixture(scope="module")
def ssh_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One loopback SSH/SFTP server in its own process (stopped when stdin closes)."""
    root = tmp_path_factory.mktemp("sshbox")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.testing.sshserver", "--n", "1", "--dir", str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if line.strip() != "ready":
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the SSH box did not start: {line!r} {err[-2000:]}")
        target = json.loads((root / "targets.json").read_text(encoding="utf-8"))[0]
        yield target
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _start_prometheus(demo: Demo, work: Path) -> Prom:
    if not Path(BINARY).exists():
        if os.environ.get("CI"):
            pytest.fail(f"prometheus not installed at {BINARY}; scripts/test installs it")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    rules = work / "rules"
    rules.mkdir(parents=True)
    targets = "".join(
        f"      - targets: ['127.0.0.1:{a['http_port']}']\n        labels: {{tier: {a['tier']}}}\n"
        for a in demo.info["agents"].values()
    )
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{rules}/*.rules.yml']\n"
        "scrape_configs:\n  - job_name: demo\n    static_configs:\n" + targets,
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    prom = Prom(f"http://127.0.0.1:{port}", proc, rules)

    def scraped() -> bool:
        if proc.poll() is not None:
            raise JourneyError(f"prometheus exited {proc.returncode}")
        try:
            got = prom.get("/api/v1/query", query='count_over_time(up{job="demo"}[1m]) >= 2')
        except (httpx.HTTPError, KeyError):
            return False
        return len(got["result"]) == len(demo.info["agents"])

    try:
        wait_until(scraped, timeout=60, what="prometheus scraping every demo box")
    except BaseException:
        prom.stop()
        raise
    return prom


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, ssh_box: dict[str, Any]) -> Iterator[Setup]:
    """The demo fleet, its repo naming the Prometheus box, and the running Prometheus."""
    root = tmp_path_factory.mktemp("ship")
    with demo_fleet(root / "demo", AGENTS) as demo:
        demo.wait_alive()
        prom = _start_prometheus(demo, root / "prom")
        try:
            yield Setup(demo, prom, ssh_box)
        finally:
            prom.stop()
