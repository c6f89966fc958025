"""A fast demo fleet for the gate tests, and a repo policy small enough to decide in seconds."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import RunResult
from reconciler.engine.session import Request, execute, prepare
from reconciler.rollout.reporter import Recorder
from reconciler.rollout.watchdog import Limits

FAST = Limits(max_heartbeat_age_s=5.0, stall_window_s=2.0)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """Six demo boxes (three of tier fast) at 50 tasks/s each."""
    async with DemoFleet.start(tmp_path / "demo", 6, tick_s=0.05, rate=50.0) as f:
        yield f


def edit(repo: Path, rel: str, old: str, new: str, message: str) -> None:
    """Replace text in one repo file and commit."""
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)


def small_policy(repo: Path, extra: str = "") -> None:
    """min_samples 40 and a 20 s inconclusive limit: the fast demo decides within seconds."""
    text = (repo / "fleet.yaml").read_text(encoding="utf-8")
    text = re.sub(r"min_samples: \d+", "min_samples: 40", text)
    text = re.sub(r"inconclusive_wait_s: \d+", f"inconclusive_wait_s: 20{extra}", text)
    (repo / "fleet.yaml").write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", "small gate policy"], cwd=repo, check=True)


async def apply(fleet: DemoFleet, **kw: Any) -> tuple[RunResult, Recorder]:
    """prepare + execute with a real clock, a 1.5 s soak and the gates on (unless gates=False)."""
    rec = Recorder()
    req = Request(
        repo=fleet.repo, soak_s=kw.pop("soak_s", 1.5), watchdog=FAST, soak_interval_s=0.25,
        gates=kw.pop("gates", True), **kw,
    )  # fmt: skip
    p = await prepare(req)
    try:
        result = await execute(p, clock=SystemClock(), reporter=rec)
    finally:
        await p.link.close()
    return result, rec


def figures(rec: Recorder, kind: str) -> list[dict[str, Any]]:
    """Every gate figure of the notes of `kind` (gates.passed / gates.failed)."""
    out: list[dict[str, Any]] = []
    for k, f in rec.notes:
        if k == kind:
            out += [x for x in f["figures"] if isinstance(x, dict)]  # type: ignore[union-attr]
    return out
