"""`reconcile apply` as a process against an in-process demo fleet: dry-run, lock, incident."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from reconciler.demo.fleet import DemoFleet
from reconciler.testing.console import reconcile_script

from .conftest import box_truth


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        reconcile_script(), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _files(fleet: DemoFleet) -> dict[str, tuple[str, int]]:
    snap = {}
    for name, box in fleet.boxes.items():
        for p in sorted(Path(box.root).rglob("*")):
            if p.is_file():
                snap[f"{name}:{p}"] = (
                    hashlib.sha256(p.read_bytes()).hexdigest(),
                    p.stat().st_mtime_ns,
                )
    return snap


async def test_dry_run_prints_the_plan_and_mutates_nothing(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """--dry-run shows waves and agents; no file, mtime, counter or state dir changes."""
    before, counters = _files(fleet), {n: b.counters.reloads for n, b in fleet.boxes.items()}
    state = tmp_path / "state"
    code, out, err = await _cli("apply", "--repo", str(fleet.repo), "--dry-run",
                                "--state-dir", str(state))  # fmt: skip
    assert code == 0, err
    assert "wave 1:" in out and "model" in out
    assert _files(fleet) == before
    assert {n: b.counters.reloads for n, b in fleet.boxes.items()} == counters
    assert not state.exists()


async def test_no_terminal_and_no_yes_is_refused(fleet: DemoFleet, tmp_path: Path) -> None:
    """Without a terminal to ask and without --yes, apply refuses and changes nothing."""
    code, _, err = await _cli("apply", "--repo", str(fleet.repo), "--state-dir", str(tmp_path))
    assert code == 1
    assert "--yes" in err


async def test_crash_on_reload_exits_3_and_writes_an_incident_report(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """A bad box rolls everything back: exit 3, incident markdown and json in the state dir."""
    victim = fleet.tier("fast")[0].name
    fleet.box(victim).fault("crash-on-reload")
    code, out, err = await _cli("apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.3",
                                "--format", "json", "--state-dir", str(tmp_path))  # fmt: skip
    assert code == 3, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(e["event"] == "rollback.started" for e in events)
    incidents = list((tmp_path / "incidents").glob("*.json"))
    assert len(incidents) == 1
    doc = json.loads(incidents[0].read_text())
    assert doc["failed"][0]["agent"] == victim
    assert doc["time_to_detect_s"] is not None and doc["time_to_roll_back_s"] is not None
    file_sha, stamp_sha, loaded = box_truth(fleet, victim)
    assert file_sha == stamp_sha == loaded


async def test_two_concurrent_applies_exactly_one_proceeds(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """Two apply processes on one state dir: one rolls out, the other names the lock holder."""
    args = (
        "apply",
        "--repo",
        str(fleet.repo),
        "--yes",
        "--soak",
        "1",
        "--state-dir",
        str(tmp_path),
    )
    (c1, _, e1), (c2, _, e2) = await asyncio.gather(_cli(*args), _cli(*args))
    assert sorted([c1, c2]) == [0, 1], (e1, e2)
    loser = e1 if c1 == 1 else e2
    assert "locked by" in loser or "held by" in loser or "moved" in loser
    for name in fleet.names:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded
