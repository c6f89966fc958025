"""Helpers for tests and benches that change a demo fleet's config repo and commit it."""

from __future__ import annotations

import subprocess
from pathlib import Path

_GIT = ("git", "-c", "user.name=reconciler tests", "-c", "user.email=tests@localhost")


def commit_all(repo: Path, message: str) -> str:
    """Commit every tracked change in `repo`; the new head sha."""
    subprocess.run([*_GIT, "commit", "-qam", message], cwd=repo, check=True)
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def without_gates(repo: Path) -> str:
    """Commit fleet.yaml without its metric gates.

    For benchmarks only (bench_rollout, bench_crash measure speed and crash recovery, and
    say so in their docstrings): it switches a safety feature off, so no journey or
    integration test uses it; they run with the demo repo's gates.
    """
    path = repo / "fleet.yaml"
    out: list[str] = []
    skipping = False
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("gates:"):
            skipping = True
            continue
        if skipping and line[:1] not in (" ", "\n", "#", "-"):
            skipping = False
        if not skipping:
            out.append(line)
    path.write_text("".join(out), encoding="utf-8")
    return commit_all(repo, "no metric gates")
