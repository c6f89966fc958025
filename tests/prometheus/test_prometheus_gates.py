"""Gates reading a real Prometheus: bad changes rolled back, a neutral one passes, and a
Prometheus that stops answering mid-rollout fails closed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import Driver, RunResult
from reconciler.engine.session import Request, execute, prepare
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue, Recorder
from reconciler.rollout.watchdog import Limits

from .conftest import Prom

FAST = Limits(max_heartbeat_age_s=5.0, stall_window_s=3.0)


def _commit(repo: Path, message: str) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def use_prometheus(repo: Path, url: str) -> None:
    """Gates on Prometheus, small enough to decide in seconds; fail fast when it is down."""
    yaml = YAML()
    path = repo / "fleet.yaml"
    doc = yaml.load(path.read_text(encoding="utf-8"))
    for gate in doc.get("gates") or []:
        gate["min_samples"] = 40
    doc["metrics"] = {
        "source": "prometheus",
        "prometheus_url": url,
        "scrape_interval_s": 1,
        "retries": 2,
        "retry_delay_s": 0.5,
        "inconclusive_wait_s": 20,
        "stale_after_s": 10,
    }
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(doc, out)
    assert f"prometheus_url: {url}" in path.read_text(encoding="utf-8")
    _commit(repo, "gates on prometheus")


class Stopper(Recorder):
    """Stops Prometheus at the first soak tick of wave `wave`."""

    def __init__(self, prom: Prom | None, wave: int) -> None:
        super().__init__()
        self.prom, self.wave = prom, wave

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        super().note(kind, fields)
        if self.prom is not None and kind == "soak.tick" and fields.get("wave") == self.wave:
            self.prom.stop()


async def _apply(
    fleet: DemoFleet, *, gates: bool = True, rec: Recorder | None = None
) -> tuple[RunResult, Recorder, Driver]:
    rec = rec or Recorder()
    req = Request(repo=fleet.repo, soak_s=3.0, watchdog=FAST, soak_interval_s=0.5, gates=gates)
    p = await prepare(req)
    drivers: list[Driver] = []
    try:
        result = await execute(p, clock=SystemClock(), reporter=rec, on_driver=drivers.append)
    finally:
        await p.link.close()
    return result, rec, drivers[0]


async def _ready(fleet: DemoFleet, prom: Prom) -> None:
    use_prometheus(fleet.repo, prom.url)
    result, rec, _ = await _apply(fleet, gates=False)
    assert result.outcome is Outcome.DONE, rec.notes


def _figures(rec: Recorder, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k, f in rec.notes:
        if k == kind:
            out += [x for x in f["figures"] if isinstance(x, dict)]  # type: ignore[union-attr]
    return out


async def test_neutral_change_passes_and_the_gates_read_prometheus(
    fleet: DemoFleet, prometheus: Prom
) -> None:
    """A neutral change passes on Prometheus data; Prometheus' own query counter rose."""
    await _ready(fleet, prometheus)
    _edit(fleet.repo, "agents/tier-fast.yaml", "max_tokens: 512", "max_tokens: 512\n"
          "  temperature: 0.25")  # fmt: skip
    _commit(fleet.repo, "tier fast: temperature")
    before = await prometheus.served_queries()
    result, rec, driver = await _apply(fleet)
    assert result.outcome is Outcome.DONE, [n for n in rec.notes if n[0].startswith("gates")]
    assert driver.gate_runner is not None and driver.gate_runner.source.name == "prometheus"
    after = await prometheus.served_queries()
    # every measurement: time() and 8 PromQL queries; every window mark: time()
    assert driver.gate_runner.queries >= 2
    assert after - before >= 9 * driver.gate_runner.queries
    passed = [f for f in _figures(rec, "gates.passed") if f["gate"] != "watchdog"]
    assert passed and all(f["outcome"] == "pass" for f in passed)


async def test_six_times_the_output_tokens_is_rolled_back(
    fleet: DemoFleet, prometheus: Prom
) -> None:
    """max_tokens x6 on tier fast is caught on Prometheus data and rolled back."""
    await _ready(fleet, prometheus)
    _edit(fleet.repo, "agents/tier-fast.yaml", "max_tokens: 512", "max_tokens: 3072")
    _commit(fleet.repo, "tier fast: longer answers")
    result, rec, _ = await _apply(fleet)
    assert result.outcome is Outcome.ROLLED_BACK
    failed = {f["gate"]: f for f in _figures(rec, "gates.failed") if f.get("outcome") == "fail"}
    assert "output-tokens" in failed, failed
    assert failed["output-tokens"]["canary"] > 4 * failed["output-tokens"]["baseline"]


async def test_a_change_that_raises_errors_is_rolled_back(
    fleet: DemoFleet, prometheus: Prom
) -> None:
    """A poisoned prompt (half the tasks fail) trips the error-rate gate on Prometheus data."""
    await _ready(fleet, prometheus)
    _edit(fleet.repo, "agents/tier-fast.yaml", "max_tokens: 512", "max_tokens: 512\n"
          "  prompt: 'Answer briefly. !!poison!!'")  # fmt: skip
    _commit(fleet.repo, "tier fast: poisoned prompt")
    result, rec, _ = await _apply(fleet)
    assert result.outcome is Outcome.ROLLED_BACK
    failed = [f for f in _figures(rec, "gates.failed") if f.get("outcome") == "fail"]
    assert any(f["gate"] == "task-errors" for f in failed), failed


async def test_prometheus_stopped_mid_rollout_fails_closed_and_rolls_back(
    fleet: DemoFleet, prometheus: Prom
) -> None:
    """Prometheus stops during wave 2's soak: the measurement fails after its retries; rollback."""
    await _ready(fleet, prometheus)
    _edit(fleet.repo, "agents/tier-fast.yaml", "max_tokens: 512", "max_tokens: 512\n"
          "  temperature: 0.25")  # fmt: skip
    _commit(fleet.repo, "tier fast: temperature")
    result, rec, _ = await _apply(fleet, rec=Stopper(prometheus, 2))
    assert result.outcome is Outcome.ROLLED_BACK, [n for n in rec.notes if "gate" in n[0]]
    failed = [f for f in _figures(rec, "gates.failed") if f.get("outcome") == "fail"]
    assert failed and all("no measurement" in f["reason"] for f in failed), failed
    assert "gates.retry" in rec.kinds()
    assert "gates failed in wave 2" in (result.state.trigger or "")
