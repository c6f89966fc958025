"""The `workers.finished` progress line: each worker's share, and work the coordinator ran."""

from __future__ import annotations

from reconciler.report.progress_lines import ProgressLines

WORKER = {"pid": 41, "boxes": 7, "cpu_s": 1.5, "exit_code": 0}


def test_coordinator_work_is_named_when_no_worker_claimed_it() -> None:
    lines = ProgressLines().lines("workers.finished", {"workers": [WORKER], "coordinator_ran": 3})
    said = " ".join(" ".join(line.split()) for line in lines)  # the tag wraps long lines
    assert "1 worker process; the coordinator ran 3 box operation(s) itself" in said
    assert lines[-1].strip() == "pid 41: 7 box operation(s), 1.5 s CPU"


def test_nothing_said_of_the_coordinator_when_the_workers_did_everything() -> None:
    lines = ProgressLines().lines("workers.finished", {"workers": [WORKER], "coordinator_ran": 0})
    assert "coordinator" not in lines[0] and "1 worker process" in lines[0]


def test_workers_elsewhere_are_listed_with_their_share() -> None:
    """A standing-by `reconcile worker` on another machine ran some of the boxes: named."""
    away = {"worker": "ci@runner-7 pid 88 worker", "boxes": 13}
    lines = ProgressLines().lines(
        "workers.finished", {"workers": [WORKER], "elsewhere": [away], "coordinator_ran": 0}
    )
    assert "1 worker process here, 1 elsewhere" in lines[0]
    assert [line.strip() for line in lines[1:]] == [
        "ci@runner-7 pid 88 worker: 13 box operation(s)",
        "pid 41: 7 box operation(s), 1.5 s CPU",
    ]
