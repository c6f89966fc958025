"""Journey: two reconcilers with separate state dirs race on the same fleet.

The design's own laptop-and-CI case: the laptop applies revision A while CI applies
revision B from its own clone; their fleet locks are separate (two journals), so the
box leases, the stamps' compare-and-swap, the restore's "still as I left it?" check and
the fencing numbers are all that keep them apart. Two races:

- apply vs rollback: A's wave 2 breaks (a box crashes on reload), so the laptop rolls
  back while CI's B is landing on the same boxes;
- apply vs resume: the laptop's run of A is killed -9 mid-rollout; CI applies B, then
  the laptop resumes A (with --policy rollback).

Either way, every box ends consistent (file == stamp == loaded, alive, no lease) on one
of the fleet's revisions (where it started, A or B), and no box's fencing number ever
went down. Neither run may crash with a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing.journeys import Demo, Result, demo_fleet, describe, explained, run

pytestmark = pytest.mark.timeout(240)

GIT = ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost"]


@pytest.fixture
def demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    with demo_fleet(tmp_path / "demo", 6) as fleet:
        fleet.reconcile("apply", "--yes", "--state-dir", tmp_path / "setup").expect(0)
        yield fleet


def ci_clone(demo: Demo, into: Path) -> tuple[Path, str]:
    """CI's own clone of the fleet repo, with revision B committed on top of the head."""
    subprocess.run(["git", "clone", "-q", str(demo.repo), str(into)], check=True)
    base = into / "agents" / "_base.yaml"
    text = base.read_text(encoding="utf-8")
    assert text.count("temperature: 0.2") == 1
    base.write_text(text.replace("temperature: 0.2", "temperature: 0.25"), encoding="utf-8")
    subprocess.run([*GIT, "commit", "-qam", "B: warmer"], cwd=into, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=into, check=True, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip
    return into, head


def wave_of(demo: Demo, index: int) -> list[str]:
    plan = demo.reconcile("apply", "--dry-run", "--format", "json").expect(0)
    waves: list[dict[str, Any]] = json.loads(plan.stdout)["waves"]
    return list(waves[index]["agents"])


def fences(demo: Demo) -> dict[str, int]:
    return {a: int((t.stamp or {}).get("fence", 0)) for a, t in demo.truths().items()}


def starts(demo: Demo) -> dict[str, str | None]:
    return {a: t.revision for a, t in demo.truths().items()}


def assert_settled(
    demo: Demo, start: dict[str, str | None], runs_meant: set[str], before: dict[str, int],
    *runs: Result,
) -> None:  # fmt: skip
    """Every box consistent, on where it started or on a revision a run meant; no fencing
    number went down; no crash."""
    truths = demo.truths()
    with explained(*(r.describe() for r in runs), describe(truths)):
        for r in runs:
            r.refuse(r"Traceback")
        problems = {a: t.problems() for a, t in truths.items() if t.problems()}
        assert not problems, problems
        off = {
            a: t.revision
            for a, t in truths.items()
            if t.revision not in runs_meant and t.revision != start[a]
        }
        assert not off, f"boxes on a revision neither run meant: {off}"
        after = fences(demo)
        down = {a: (before[a], after[a]) for a in after if after[a] < before[a]}
        assert not down, f"fencing numbers went down: {down}"


def test_apply_while_another_machine_rolls_back(demo: Demo, tmp_path: Path) -> None:
    """The laptop's A rolls back while CI's B lands: each box on its start, A or B."""
    start = starts(demo)
    a = demo.commit_edit("agents/_base.yaml", "log_level: info", "log_level: debug", "A")
    ci_repo, b = ci_clone(demo, tmp_path / "ci-repo")
    demo.fault(wave_of(demo, 1)[-1], "crash-on-reload")  # A's wave 2 breaks: a rollback
    before = fences(demo)
    laptop = demo.background("apply", "--yes", "--format", "json", "--soak", "6",
                             "--state-dir", tmp_path / "laptop")  # fmt: skip
    try:
        laptop.wait_for("box.applied", timeout=90)
        ci = run("apply", "--repo", ci_repo, "--yes", "--format", "json", "--soak", "1",
                 "--state-dir", tmp_path / "ci", timeout=180)  # fmt: skip
        done = laptop.finish(timeout=180)
    finally:
        laptop.kill()
    demo.clear_all()
    assert done.rc in (1, 3, 4) and ci.rc in (0, 1, 3, 4), (done.rc, ci.rc)
    assert_settled(demo, start, {a, b}, before, done, ci)


def test_apply_between_a_kill_and_its_resume(demo: Demo, tmp_path: Path) -> None:
    """A killed -9; CI applies B; the laptop resumes A: each box on its start, A or B."""
    start = starts(demo)
    a = demo.commit_edit("agents/_base.yaml", "log_level: info", "log_level: debug", "A")
    ci_repo, b = ci_clone(demo, tmp_path / "ci-repo")
    before = fences(demo)
    laptop_state = tmp_path / "laptop"
    laptop = demo.background("apply", "--yes", "--format", "json", "--soak", "6",
                             "--state-dir", laptop_state)  # fmt: skip
    try:
        laptop.wait_for("box.applied", timeout=90)
        laptop.send(signal.SIGKILL)
        killed = laptop.finish(timeout=30)
    finally:
        laptop.kill()
    ci = run("apply", "--repo", ci_repo, "--yes", "--format", "json", "--soak", "1",
             "--state-dir", tmp_path / "ci", timeout=180)  # fmt: skip
    resumed = demo.reconcile("resume", "--state-dir", laptop_state, "--policy", "rollback",
                             timeout=180)  # fmt: skip
    assert resumed.rc in (0, 3, 4), resumed.describe()
    assert_settled(demo, start, {a, b}, before, killed, ci, resumed)
