"""A 5-box demo fleet in process, a subprocess `reconcile`, and the fleet's truth after a crash."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.session import Request, read_source
from reconciler.model.box import parse_stamp
from reconciler.rollout.preflight import desired_of
from reconciler.testing.console import crashing_command, reconcile_script


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """Five demo boxes (three change at the head commit: tier fast)."""
    async with DemoFleet.start(tmp_path / "demo", 5, tick_s=0.1, rate=20.0) as f:
        yield f


async def cli(*args: str, crash_at: str | None = None) -> tuple[int, str, str]:
    """Run `reconcile ARGS` as a process; with `crash_at`, the crashing entry point
    (reconciler.testing.crashing) with RECONCILER_CRASH_AT set instead."""
    env = dict(os.environ)
    env.pop("RECONCILER_CRASH_AT", None)
    command = [reconcile_script()]
    if crash_at:
        env["RECONCILER_CRASH_AT"] = crash_at
        command = crashing_command()
    proc = await asyncio.create_subprocess_exec(
        *command, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass(frozen=True)
class Truth:
    """One box after recovery."""

    file_sha: str | None
    stamp_sha: str | None
    loaded_sha: str | None
    alive: bool
    lease_left: bool
    history: frozenset[str]


def commit(repo: Path, rel: str, old: str, new: str, message: str) -> str:
    """Edit one file of the fleet repo (text replace) and commit it; the new head sha."""
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return git(repo, "commit", "-qam", message)


def git(repo: Path, *args: str) -> str:
    """Run git in the fleet repo; the head sha afterwards."""
    g = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*g, *args], cwd=repo, check=True, capture_output=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                         text=True)  # fmt: skip
    return out.stdout.strip()


def truth(fleet: DemoFleet, name: str) -> Truth:
    box = fleet.box(name)
    cfg = box.path(box.paths.config)
    st = box.path(box.paths.stamp)
    hist = box.path(box.paths.history_dir)
    return Truth(
        hashlib.sha256(cfg.read_bytes()).hexdigest() if cfg.exists() else None,
        parse_stamp(st.read_bytes()).config_sha256 if st.exists() else None,
        box.agent.loaded_sha,
        box.agent.crashed is None,
        box.path(box.paths.lease_dir).exists(),
        frozenset(p.name for p in hist.iterdir()) if hist.exists() else frozenset(),
    )


def old_shas(fleet: DemoFleet) -> dict[str, str]:
    """What every box runs now (before the rollout)."""
    out = {}
    for n in fleet.names:
        sha = truth(fleet, n).file_sha
        assert sha is not None
        out[n] = sha
    return out


def head_shas(fleet: DemoFleet) -> dict[str, str]:
    """What the repo's head renders for every box."""
    source = read_source(Request(repo=fleet.repo))
    return {a: d.sha for a, d in desired_of(source.repo).items()}


def assert_converged(fleet: DemoFleet, old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Every box on old or new with file == stamp == loaded, no lease left, nothing lost."""
    where = {}
    for n in fleet.names:
        t = truth(fleet, n)
        assert t.file_sha == t.stamp_sha == t.loaded_sha, (n, t)
        assert t.alive, (n, t)
        assert t.file_sha in (old[n], new[n]), (n, t)
        assert not t.lease_left, n
        assert old[n] in t.history, f"{n}: its old config is lost from history"
        where[n] = "old" if t.file_sha == old[n] else "new"
    return where
