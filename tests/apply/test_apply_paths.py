"""`reconcile apply` paths beyond the happy one, as processes against an in-process demo fleet.

A saved plan (--plan) applied or refused, the fleet lock (--wait-lock, a
refusal naming the holder, `unlock --force`), a rollback that fails on a box
(exit 4), and Ctrl-C in the middle of a soak (exit 3, every box restored).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.session import prepare
from reconciler.journal.base import Holder, LockLease
from reconciler.journal.lock import SqliteLock
from reconciler.testing.console import reconcile_script

from .conftest import box_truth, request, three_waves

Event = dict[str, object]


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        reconcile_script(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _watch(
    proc: asyncio.subprocess.Process, on_line: Callable[[str], None]
) -> tuple[int, str, str]:
    """Feed each stdout line to `on_line` as it comes; (exit code, stdout, stderr) at the end."""
    assert proc.stdout is not None and proc.stderr is not None
    err_task = asyncio.create_task(proc.stderr.read())
    lines = []
    async for raw in proc.stdout:
        line = raw.decode()
        lines.append(line)
        on_line(line)
    code = await proc.wait()
    return code, "".join(lines), (await err_task).decode()


def _event(line: str) -> Event | None:
    return json.loads(line) if line.startswith("{") else None


async def _plan_of(fleet: DemoFleet) -> tuple[dict[str, str | None], list[list[str]]]:
    """(agent -> pre-change sha, the waves) of the fleet's pending plan; nothing touched."""
    p = await prepare(request(fleet))
    await p.link.close()
    return {a: p.plan.box(a).pre_sha for a in p.plan.agents}, [list(w.agents) for w in p.plan.waves]


def _state(tmp_path: Path) -> tuple[str, str]:
    return ("--state-dir", str(tmp_path / "state"))


def _fleet_id(fleet: DemoFleet) -> str:
    for line in (fleet.repo / "fleet.yaml").read_text().splitlines():
        if line.startswith("fleet_id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no fleet_id in fleet.yaml")


# -- a saved plan -------------------------------------------------------------------------


async def _save_plan(fleet: DemoFleet, tmp_path: Path) -> Path:
    code, out, err = await _cli("apply", "--repo", str(fleet.repo), "--dry-run", "--soak", "0.2",
                                "--format", "json", *_state(tmp_path))  # fmt: skip
    assert code == 0, err
    path = tmp_path / "plan.json"
    path.write_text(out, encoding="utf-8")
    return path


async def test_saved_plan_applies_when_no_box_moved(fleet: DemoFleet, tmp_path: Path) -> None:
    """A plan saved by --dry-run --format json applies with --plan while the boxes are unmoved."""
    plan_file = await _save_plan(fleet, tmp_path)
    plan = json.loads(plan_file.read_text())
    code, _, err = await _cli("apply", "--repo", str(fleet.repo), "--plan", str(plan_file),
                              "--yes", *_state(tmp_path))  # fmt: skip
    assert code == 0, err
    for b in plan["boxes"]:
        assert box_truth(fleet, b["agent"]) == (b["target_sha"],) * 3


async def test_saved_plan_is_refused_naming_the_box_that_moved(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """A hand edit on one plan box after the plan was saved: --plan refuses, naming that box."""
    plan_file = await _save_plan(fleet, tmp_path)
    moved = json.loads(plan_file.read_text())["boxes"][0]["agent"]
    box = fleet.box(moved)
    config = box.path(box.paths.config)
    config.write_bytes(config.read_bytes() + b"# edited by hand\n")
    writes = {n: b.counters.writes for n, b in fleet.boxes.items()}
    code, _, err = await _cli("apply", "--repo", str(fleet.repo), "--plan", str(plan_file),
                              "--yes", *_state(tmp_path))  # fmt: skip
    assert code == 1
    assert moved in err
    assert {n: b.counters.writes for n, b in fleet.boxes.items()} == writes


# -- the fleet lock -----------------------------------------------------------------------


def _hold(tmp_path: Path, fleet: DemoFleet) -> tuple[SqliteLock, LockLease]:
    lock = SqliteLock(tmp_path / "state")
    lease = lock.acquire(_fleet_id(fleet), Holder.here("held-by-the-test"), ttl_s=120)
    return lock, lease


async def test_wait_lock_waits_for_the_holder_and_a_second_apply_is_refused_naming_it(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """While the test holds the lock: apply without --wait-lock names the holder, exit 1;
    apply --wait-lock waits, and proceeds once the lock is released."""
    lock, lease = _hold(tmp_path, fleet)
    try:
        code, _, err = await _cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
                                  *_state(tmp_path))  # fmt: skip
        assert code == 1
        assert f"pid {os.getpid()}" in err and lease.lock_id in err and "--wait-lock" in err
        assert all(b.counters.writes == 0 for b in fleet.boxes.values())

        proc = await asyncio.create_subprocess_exec(
            reconcile_script(), "apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
            "--wait-lock", "60", *_state(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        told = ""
        while "waiting up to" not in told and (raw := await proc.stderr.readline()):
            told = raw.decode()
        assert "waiting up to" in told and f"pid {os.getpid()}" in told, told
        await asyncio.sleep(1.0)
        assert proc.returncode is None  # still waiting for the lock
        assert all(b.counters.writes == 0 for b in fleet.boxes.values())
    finally:
        lock.release(lease)
        lock.close()
    _, rest = await proc.communicate()
    assert proc.returncode == 0, rest.decode()
    for name in fleet.names:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded


async def test_unlock_needs_force_and_then_breaks_the_named_lock(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """`unlock LOCK_ID` refuses without --force; with it the lock is gone and its holder named."""
    lock, lease = _hold(tmp_path, fleet)
    try:
        code, _, err = await _cli("unlock", lease.lock_id, *_state(tmp_path))
        assert code == 1 and "--force" in err
        assert lock.holder(lease.fleet_id) == lease
        code, _, err = await _cli("unlock", "--force", "no-such-lock", *_state(tmp_path))
        assert code == 1 and "no-such-lock" in err
        code, _, err = await _cli("unlock", "--force", lease.lock_id, *_state(tmp_path))
        assert code == 0, err
        assert lease.lock_id in err and f"pid {os.getpid()}" in err
        assert lock.holder(lease.fleet_id) is None
    finally:
        lock.close()
    code, _, err = await _cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.2",
                              *_state(tmp_path))  # fmt: skip
    assert code == 0, err


# -- a failed rollback, and Ctrl-C ---------------------------------------------------------


@pytest.mark.agents(6)
async def test_rollback_that_fails_on_a_box_exits_4_naming_it_in_stderr_and_incident(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """Wave 1's box loses its kept file; wave 2's box crashes on reload: exit 4, box named."""
    three_waves(fleet.repo)
    pre, waves = await _plan_of(fleet)
    (lost,), (crash,) = waves[0], waves[1]
    fleet.box(crash).fault("crash-on-reload")
    box = fleet.box(lost)
    kept = box.path(box.paths.history_file(str(pre[lost])))

    def on_line(line: str) -> None:
        ev = _event(line)
        if ev and ev["event"] == "box.applied" and ev["agent"] == lost:
            kept.unlink()  # the history file a restore needs is gone

    proc = await asyncio.create_subprocess_exec(
        reconcile_script(), "apply", "--repo", str(fleet.repo), "--yes", "--soak", "1", "--format",
        "json", *_state(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    code, out, err = await _watch(proc, on_line)
    assert code == 4, err
    assert not kept.exists()
    assert f"ROLLBACK FAILED on {lost}" in err
    events = [e for line in out.splitlines() if (e := _event(line))]
    failed = [e for e in events if e["event"] == "box.restore_failed"]
    assert [e["agent"] for e in failed] == [lost]
    assert "restore by hand" in str(failed[0]["reason"])
    (incident,) = (tmp_path / "state" / "incidents").glob("*.json")
    doc = json.loads(incident.read_text())
    assert doc["restore_failed"] == [lost]
    markdown = incident.with_suffix(".md").read_text()
    assert f"**{lost}**" in markdown
    file_sha, stamp_sha, loaded = box_truth(fleet, crash)
    assert file_sha == stamp_sha == loaded == pre[crash]  # the other box was restored


@pytest.mark.agents(6)
async def test_ctrl_c_during_wave_two_soak_rolls_back_every_box_and_exits_3(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """SIGINT while wave 2 soaks: the rollout rolls back (exit 3); every box is on its old sha."""
    three_waves(fleet.repo)
    pre, waves = await _plan_of(fleet)
    assert len(waves) == 3
    proc = await asyncio.create_subprocess_exec(
        reconcile_script(), "apply", "--repo", str(fleet.repo), "--yes", "--soak", "2", "--format",
        "json", *_state(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    sent: list[Event] = []

    def on_line(line: str) -> None:
        ev = _event(line)
        if ev and ev["event"] == "soak.tick" and ev["wave"] == 2 and not sent:
            sent.append(ev)
            proc.send_signal(signal.SIGINT)

    code, out, err = await _watch(proc, on_line)
    assert sent, out
    assert code == 3, err
    events = [e for line in out.splitlines() if (e := _event(line))]
    assert any(e["event"] == "rollback.started" for e in events)
    restored = sorted(str(e["agent"]) for e in events if e["event"] == "box.restored")
    assert restored == sorted(waves[0] + waves[1])
    for name in fleet.names:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded
        if name in pre:
            assert file_sha == pre[name]
    for name in waves[2]:
        assert fleet.box(name).counters.writes == 0
