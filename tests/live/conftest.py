"""A demo fleet in process for the live-mode tests, `reconcile` as a process, repo edits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.config.repo import load_repo
from reconciler.demo.fleet import DemoFleet
from reconciler.model.box import parse_stamp
from reconciler.render import render_payload, sha256_hex
from reconciler.render.stamp import make_stamp
from reconciler.repo import read_revision

RECONCILE = str(Path(sys.executable).parent / "reconcile")


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """4 demo boxes (3 tier fast, 1 tier smart) ticking fast, in the test's event loop."""
    async with DemoFleet.start(tmp_path / "demo", 4, tick_s=0.1, rate=20.0) as f:
        yield f


@dataclass(frozen=True)
class Run:
    """A finished `reconcile` process."""

    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


async def cli(*args: str) -> Run:
    """Run `reconcile ARGS` as a process while the fleet keeps serving in this loop."""
    proc = await asyncio.create_subprocess_exec(
        RECONCILE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def commit_all(repo: Path, message: str) -> str:
    """Commit every change in the fleet repo's work tree; the new head sha."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def replace_in(path: Path, old: str, new: str) -> None:
    """Replace one exact text in a file (which must hold it)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def remove_agent(repo: Path, shard: str, name: str) -> None:
    """Delete one agent's entry from its shard file (the demo writes one key per line)."""
    path = repo / "shards" / f"{shard}.yaml"
    lines = path.read_text(encoding="utf-8").split("\n")
    start = lines.index(f"  - name: {name}")
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    path.write_text("\n".join(lines[:start] + lines[end:]), encoding="utf-8")


def run_head(fleet: DemoFleet, name: str) -> None:
    """Make a box run the head commit, as apply leaves it: rendered bytes, then the stamp."""
    head = read_revision(fleet.repo, "HEAD")
    agent = load_repo(head.files).agents[name].agent
    box = fleet.box(name)
    old = parse_stamp(box.path(box.paths.stamp).read_bytes())
    data = render_payload(agent.config)
    stamp = make_stamp(
        fleet_id=old.fleet_id,
        agent=name,
        revision=head.sha,
        config_sha256=sha256_hex(data),
        rollout_id="test-rollout",
        outcome="applied",
        now=datetime.now(UTC),
        previous=old,
        secrets_fingerprint=old.secrets_fingerprint,
    )
    box.path(box.paths.config).write_bytes(data)
    box.path(box.paths.stamp).write_bytes(stamp.to_bytes())


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` that starts with `text` (stripped)."""
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip().startswith(text):
            return i
    raise AssertionError(f"{text!r} not in {path}")
