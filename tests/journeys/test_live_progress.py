"""Journey: what the operator sees while a 200-box demo fleet rolls out (issue 17).

On a terminal (a tmux pane, 160x50, captured after the run): the live display's last
picture (one row per wave with its counts and phase, the outcome) and the gate verdicts
printed above it, every identifier whole. Piped (a 4-box fleet): short lines, none twice,
no Python repr; with `--format json` stdout holds JSON lines only, the plan first as one
document. The demo repo's own fleet.yaml (gates on), a 1 s soak.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reconciler.testing.journeys import cli_env, demo_fleet, explained, reconcile_bin

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("live") / "demo", 200) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("piped") / "demo", 4) as fleet:
        yield fleet


def in_tmux(tmp: Path, argv: list[str], timeout: float = 300.0) -> tuple[int, str]:
    """Run `argv` in a fresh tmux server's 160x50 pane; its exit code and the pane's text
    (scrollback included) once it ended. The server is killed after, whatever happens."""
    assert shutil.which("tmux"), "this journey needs tmux (apt-get install tmux)"
    socket = f"reconcile-test-{os.getpid()}"
    done = tmp / "exit-code"
    env = {k: v for k, v in cli_env().items() if k not in ("TERM", "COLUMNS", "NO_COLOR")}
    shell = f"{shlex.join(argv)} >{shlex.quote(str(tmp / 'stdout'))}; echo $? >{done}; sleep 600"
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "t", "-x", "160", "-y", "50", shell],
                   check=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not done.exists() or not done.read_text().strip():
            assert time.monotonic() < deadline, "the command did not end in time"
            time.sleep(0.5)
        capture = [*tmux, "capture-pane", "-p", "-t", "t", "-S", "-300"]
        pane = subprocess.run(capture, check=True, capture_output=True, text=True, env=env).stdout
        return int(done.read_text()), pane
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def test_a_200_box_rollout_on_a_terminal_shows_the_live_display(demo, tmp_path, state_dir):
    argv = [str(reconcile_bin()), "apply", "--repo", str(demo.repo), "--yes", "--soak", "1",
            "--state-dir", str(state_dir)]  # fmt: skip
    rc, pane = in_tmux(tmp_path, argv)
    plan = (tmp_path / "stdout").read_text()
    with explained(f"exit {rc}\n--- pane ---\n{pane}\n--- stdout ---\n{plan}"):
        assert rc == 0
        waves = re.findall(r"^wave (\d)/(\d) +━+ +(\d+)/(\d+) applied +passed$", pane, re.M)
        assert [w[:2] for w in waves] == [(str(n), "4") for n in range(1, 5)], waves
        assert all(done == total for _, _, done, total in waves), waves
        changed = sum(int(total) for *_, total in waves)
        rollout = re.search(r"^rollout (r-\S+)  revision ([0-9a-f]{40})  (\d+) box\(es\) in 4 "
                            r"wave\(s\)  done \(exit 0\)$", pane, re.M)  # fmt: skip
        assert rollout is not None
        assert rollout.group(2) == demo.head() and int(rollout.group(3)) == changed
        assert len(re.findall(r"^gates\.passed +wave \d/4: 5 of 5 checks passed$", pane, re.M)) == 4
        assert re.search(r"^  task-errors PASS canary \S+ baseline \S+ threshold \S+ samples "
                         r"\d+/\d+: ", pane, re.M)  # fmt: skip
        assert "Traceback" not in pane and "['" not in pane
        assert plan.startswith("plan ") and f"{changed} box(es) change" in plan


def test_piped_the_rollout_is_compact_lines_and_json_is_json_lines_plan_first(small, state_dir):
    piped = small.reconcile("apply", "--yes", "--soak", "1", "--state-dir", state_dir)
    with explained(piped.describe()):
        piped.expect(0, r"gates\.passed").refuse("Traceback", r"\['", r"\{'", "soaking, ")
        lines = piped.stderr.splitlines()
        assert all(len(line) <= 160 for line in lines)
        assert len(set(lines)) == len(lines), "a line printed twice"
        assert len(lines) < 60
    head = small.revert_head()  # every changed box gets back the config it ran
    done = small.reconcile("apply", "--yes", "--soak", "1", "--format", "json",
                           "--state-dir", state_dir)  # fmt: skip
    with explained(done.describe()):
        done.expect(0).refuse("Traceback")
        docs = [json.loads(line) for line in done.stdout.splitlines()]  # JSON lines only
        assert docs[0]["event"] == "plan"
        assert docs[0]["plan"]["target_revision"] == head
        assert [d["event"] for d in docs[1:3]] == ["rollout.started", "preflight.passed"]
        assert docs[-1]["event"] == "rollout.finished"
