"""A demo fleet in process for the apply tests, and helpers to change its repo and run apply."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import RunResult
from reconciler.engine.session import Prepared, Request, execute, prepare
from reconciler.model.box import parse_stamp
from reconciler.rollout.reporter import Recorder
from reconciler.rollout.watchdog import Limits

FAST = Limits(max_heartbeat_age_s=5.0, stall_window_s=0.6)


@pytest.fixture
async def fleet(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[DemoFleet]:
    """A running demo fleet; `@pytest.mark.agents(N)` picks N (default 4)."""
    mark = request.node.get_closest_marker("agents")
    n = mark.args[0] if mark else 4
    async with DemoFleet.start(tmp_path / "demo", n, tick_s=0.1, rate=20.0) as f:
        yield f


def commit(repo: Path, rel: str, old: str, new: str, message: str) -> str:
    """Edit one file of the fleet repo (text replace) and commit it; the new head sha."""
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def three_waves(repo: Path) -> str:
    """Make the policy waves [1, 1, 100%] so a small fleet has three waves."""
    return commit(repo, "fleet.yaml", "waves: [1, 5, 25%, 100%]", "waves: [1, 2, 100%]",
                  "three small waves")  # fmt: skip


def request(fleet: DemoFleet, **kw: Any) -> Request:
    return Request(
        repo=fleet.repo, soak_s=kw.pop("soak_s", 0.3), watchdog=kw.pop("watchdog", FAST),
        soak_interval_s=0.1, gates=kw.pop("gates", True), **kw,
    )  # fmt: skip


async def run_apply(
    fleet: DemoFleet, prepared: Prepared | None = None, **kw: Any
) -> tuple[RunResult, Recorder]:
    """prepare + execute against the fleet with a real clock and short soaks."""
    rec = Recorder()
    p = prepared or await prepare(request(fleet, **kw))
    try:
        result = await execute(p, clock=SystemClock(), reporter=rec)
    finally:
        await p.link.close()
    return result, rec


def box_truth(fleet: DemoFleet, name: str) -> tuple[str, str, str | None]:
    """(file sha, stamp sha, loaded sha) of one demo box."""
    box = fleet.box(name)
    data = box.path(box.paths.config).read_bytes()
    stamp = parse_stamp(box.path(box.paths.stamp).read_bytes())
    return hashlib.sha256(data).hexdigest(), stamp.config_sha256, box.agent.loaded_sha


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "agents(n): how many demo boxes the fleet fixture starts")
