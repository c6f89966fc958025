"""The progress model's words, the live picture, and the formats the rollout commands take."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.cli.live import LiveReporter
from reconciler.cli.progress import LineReporter
from reconciler.report.progress import gate_why
from reconciler.report.refusals import group_refusals

FIG = {"gate": "cost", "outcome": "pass", "ok": True, "reason": "no significant harm",
       "canary": 0.00118, "baseline": 0.00083, "threshold": 0.00117, "canary_samples": 259,
       "baseline_samples": 206, "z": 1.2, "critical": 1.6449}  # fmt: skip


def test_a_pass_above_the_threshold_says_it_was_not_significant() -> None:
    assert gate_why(FIG) == "above the threshold but not significant: z 1.20 < 1.64 at 95%"
    assert gate_why({**FIG, "canary": 0.001}) == "within the threshold"


def test_a_fail_says_the_test_and_an_undecided_gate_what_it_waits_for() -> None:
    fail = {**FIG, "outcome": "fail", "ok": False, "z": 3.1,
            "reason": "cost_per_task significantly above 1.4 x baseline"}  # fmt: skip
    assert gate_why(fail) == (
        "cost_per_task significantly above 1.4 x baseline: z 3.10 >= 1.64 at 95%"
    )
    wait = {**FIG, "outcome": "inconclusive", "ok": False,
            "reason": "too few samples: 41 of the 200 needed"}  # fmt: skip
    assert gate_why(wait) == "waiting: 41 of 200 samples"


def test_the_live_picture_prints_error_text_verbatim_and_keeps_failures_on_screen() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system=None)
    live = LiveReporter(console)
    reason = "rejected: ^[a-z0-9]{0,62}$ [bold]not bold[/]"
    waves = [["box-a"], ["box-b", "box-c"]]
    started = {"rollout_id": "r-1", "plan_id": "p", "revision": "a" * 40, "waves": waves}
    live.note("rollout.started", {**started, "boxes": 3})
    live.note("wave.started", {"wave": 1, "agents": ["box-a"]})
    live.note("box.failed", {"agent": "box-a", "wave": 1, "step": "reload", "reason": reason})
    live.note("rollback.started", {"trigger": "1 box failed"})
    live.note("box.restored", {"agent": "box-a"})
    live.note("rollout.finished", {"outcome": "rolled-back", "exit_code": 3, "left_behind": []})
    text = screen.getvalue()
    assert reason in text
    assert "box-a: runs its old config again" in text
    assert "0/1 applied, 1 failed, 1 restored" in text  # the last picture stays
    assert "a" * 40 in text  # the revision whole


@pytest.mark.parametrize("command", ["apply", "resume", "status", "history"])
def test_a_format_the_command_does_not_print_is_refused_with_exit_1(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--format", "markdown"])
    assert result.exit_code == 1, result.output
    assert f"{command} prints text or json only" in result.output


def test_rotate_secret_refuses_markdown_and_lists_its_formats() -> None:
    result = CliRunner().invoke(app, ["rotate-secret", "k", "--format", "markdown"])
    assert result.exit_code == 1, result.output
    help_text = CliRunner().invoke(app, ["apply", "--help"]).output
    assert "One of: text, json" in help_text


def test_repeated_refusals_are_grouped_with_the_fix_for_their_cause() -> None:
    unknown = "connect: host key unknown: [127.0.0.1]:{p} presented ssh-ed25519 SHA256:x"
    refused = {f"box-{i:02d}": unknown.format(p=2200 + i) for i in range(12)}
    refused["box-down"] = "box-down: connect: cannot reach 127.0.0.1:2299: Connection refused"
    lines = group_refusals(refused)
    assert lines[0] == (
        "12 boxes: host key unknown: "
        + ", ".join(f"box-{i:02d}" for i in range(10))
        + " and 2 more"
    )
    assert lines[1] == f"  e.g. box-00: {unknown.format(p=2200)}"
    assert "--allow-unreachable" not in lines[2] and "known_hosts" in lines[2]
    assert lines[3] == "1 box: unreachable: box-down"
    assert lines[4] == "  box-down: connect: cannot reach 127.0.0.1:2299: Connection refused"
    assert "--allow-unreachable" in lines[5]
    missing = {"a": "connect: cannot load private key /k: [Errno 2] No such file"}
    assert "--allow-unreachable" not in "\n".join(group_refusals(missing))


def test_a_resume_prints_plain_lines_without_reprs() -> None:
    buffer = io.StringIO()
    lines = LineReporter(buffer)
    actions = {f"box-{i}": "restore" for i in range(150)} | {"box-x": "keep-new"}
    started = {"rollout_id": "r-9", "source": "stamps", "mode": "settle", "verdict": None}
    lines.note("resume.started", {**started, "evidence": ["a lease"], "boxes": actions})
    lines.note("box.restored", {"agent": "box-1"})
    lines.note("box.restore_failed", {"agent": "box-2", "reason": "write: [Errno 28] full"})
    lines.note("resume.finished", {"rollout_id": "r-9", "outcome": "rolled-back",
                                   "restored": 149, "failed": ["box-2"]})  # fmt: skip
    out = buffer.getvalue().splitlines()
    assert out == [
        "resume.started     rollout r-9 (found from the stamps): settle; 1 keep-new, 150 restore",
        "box.restored       box-1: runs its old config again",
        "box.restore_failed box-2: NOT restored: write: [Errno 28] full",
        "resume.finished    rolled-back: 149 box(es) restored; NOT put back: box-2",
    ]


def test_each_rollout_of_one_command_gets_its_own_lines() -> None:
    """rotate-secret runs stage then promote through one reporter: both show their waves."""
    buffer = io.StringIO()
    lines = LineReporter(buffer)
    for rid in ("r-stage", "r-promote"):
        lines.note("rollout.started", {"rollout_id": rid, "plan_id": "p", "revision": "v",
                                       "waves": [["a"]], "boxes": 1})  # fmt: skip
        lines.note("wave.started", {"wave": 1, "agents": ["a"]})
        lines.note("box.applied", {"agent": "a", "wave": 1})
        undecided = {**FIG, "outcome": "inconclusive", "ok": False,
                     "reason": "too few samples: 3 of the 30 needed"}  # fmt: skip
        failed = {**FIG, "gate": "errors", "outcome": "fail", "ok": False, "z": 4.0}
        lines.note("gates.failed", {"wave": 1, "figures": [failed, undecided]})
    out = buffer.getvalue()
    assert out.count("wave.started       wave 1/1: applying 1 box") == 2
    assert out.count("wave.applied       wave 1/1: 1/1 applied") == 2
    assert out.count("cost undecided canary") == 2
    assert "undecided: 3 of 30 samples" in out


def test_gates_waiting_for_the_same_thing_share_one_line() -> None:
    buffer = io.StringIO()
    lines = LineReporter(buffer)
    lines.note("rollout.started", {"rollout_id": "r", "plan_id": "p", "revision": "v",
                                   "waves": [["a"]], "boxes": 1})  # fmt: skip
    few = {**FIG, "outcome": "inconclusive", "ok": False,
           "reason": "too few samples: 12 of the 30 needed"}  # fmt: skip
    pending = [{**few, "gate": g} for g in ("task-errors", "latency", "cost", "output-tokens")]
    for waited in (0.0, 2.0, 4.0):
        lines.note("gates.waiting", {"wave": 1, "waited_s": waited, "limit_s": 15,
                                     "pending": pending})  # fmt: skip
    assert buffer.getvalue().splitlines()[-1] == (
        "gates.waiting      wave 1/1: 4 gates undecided after 0s of 15s: task-errors, latency, "
        "cost, output-tokens waiting: 12 of 30 samples"
    )
