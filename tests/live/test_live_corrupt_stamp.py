"""A box whose stamp file is corrupt is `unknown`, never `foreign`, in diff, status and apply.

The incident: a stamp that was not JSON (or JSON that is not a stamp) made the box
`foreign`, and `reconcile diff --exit-code` exited 0 as if the diff were complete. An
unreadable stamp names no fleet: whose box it is cannot be known, so it is unknown, with
a reason naming the box and the stamp path; live diff exits 1 unless --allow-unreachable,
status shows it red, and apply refuses the box and writes nothing. A valid stamp of
another fleet stays foreign (test_live_diff.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from jsonschema import Draft202012Validator

from reconciler.demo.fleet import DemoFleet
from reconciler.report.status import StatusReport

from .conftest import cli

ROOT = Path(__file__).resolve().parents[2]
DIFF_SCHEMA = ROOT / "schemas" / "diff.schema.json"
# Garbage that must never be echoed: only what is wrong with the file is reported.
GARBAGE = b"\x00\xffnot json at all: token=sk-do-not-print-me {"
NOT_A_STAMP = b'{"fleet_id": "acme", "note": "sk-do-not-print-me"}\n'


def _corrupt(fleet: DemoFleet) -> tuple[str, str, dict[str, str]]:
    """Garbage in one fast box's stamp, a JSON non-stamp in another's; their stamp paths."""
    fast = [b.name for b in fleet.tier("fast")]
    garbage, not_stamp = fast[0], fast[1]
    paths = {}
    for name, data in ((garbage, GARBAGE), (not_stamp, NOT_A_STAMP)):
        box = fleet.box(name)
        box.path(box.paths.stamp).write_bytes(data)
        paths[name] = str(box.paths.stamp)
    return garbage, not_stamp, paths


def _snapshot(fleet: DemoFleet) -> dict[str, tuple[str, int]]:
    """Every file on every box: sha and mtime."""
    snap = {}
    for name, box in fleet.boxes.items():
        for p in sorted(Path(box.root).rglob("*")):
            if p.is_file():
                snap[f"{name}:{p}"] = (
                    hashlib.sha256(p.read_bytes()).hexdigest(),
                    p.stat().st_mtime_ns,
                )
    return snap


async def test_live_diff_fails_on_a_corrupt_stamp_unless_allowed(fleet: DemoFleet) -> None:
    """Exit 1 naming each box and its stamp path (also with --exit-code); never 'foreign'."""
    garbage, not_stamp, paths = _corrupt(fleet)
    for args in ((), ("--exit-code",), ("--format", "json")):
        run = await cli("diff", "--repo", str(fleet.repo), *args)
        assert run.code == 1, (args, run.both)
        for name in (garbage, not_stamp):
            assert f"unknown: {name}: stamp unreadable: {paths[name]}" in run.err, run.err
        assert "--allow-unreachable" in run.err
        assert "[foreign]" not in run.out and '"status": "foreign"' not in run.out
        assert "sk-do-not-print-me" not in run.both
        assert "Traceback" not in run.err
    assert "Invalid JSON" in run.err
    assert "not a valid stamp" in run.err


async def test_corrupt_stamp_is_unknown_in_every_format(fleet: DemoFleet) -> None:
    """With --allow-unreachable: unknown with its reason in text, markdown and json."""
    garbage, not_stamp, paths = _corrupt(fleet)
    repo = str(fleet.repo)
    runs = {}
    for fmt in ("text", "markdown", "json"):
        runs[fmt] = await cli("diff", "--repo", repo, "--allow-unreachable", "--format", fmt)
        assert runs[fmt].code == 0, runs[fmt].both
        assert "sk-do-not-print-me" not in runs[fmt].both
    for fmt in ("text", "markdown"):
        out = runs[fmt].out
        assert "2 unknown" in out, out
        assert "0 refused" in out, out
        assert "[foreign]" not in out and "| foreign |" not in out, out
        for name in (garbage, not_stamp):
            assert f"stamp unreadable: {paths[name]}" in out, out
    assert f"{garbage}: stamp unreadable: {paths[garbage]}" in runs["text"].out  # once per box

    doc = json.loads(runs["json"].out)
    Draft202012Validator(json.loads(DIFF_SCHEMA.read_text(encoding="utf-8"))).validate(doc)
    assert doc["summary"]["unknown"] == 2
    assert doc["summary"]["foreign"] == 0
    statuses = {a: g["status"] for g in doc["groups"] for a in g["agents"]}
    assert statuses[garbage] == statuses[not_stamp] == "unknown"
    reasons = {a["agent"]: a["reason"] for a in doc["diff"]["agents"]}
    for name in (garbage, not_stamp):
        assert reasons[name].startswith(f"{name}: stamp unreadable: {paths[name]} on 127.0.0.1:")

    # The readable boxes still show the head's change: --exit-code says 2, not 1 or 0.
    run = await cli("diff", "--repo", repo, "--allow-unreachable", "--exit-code")
    assert run.code == 2, run.both


async def test_status_shows_a_corrupt_stamp_red_unknown(fleet: DemoFleet) -> None:
    """status: the box is red, state unknown, the reason names the stamp; exit 1."""
    garbage, _, paths = _corrupt(fleet)
    run = await cli(
        "status", "--repo", str(fleet.repo), "--window", "1", "--format", "json", "--all"
    )
    assert run.code == 1, run.both
    rows = {a.agent: a for a in StatusReport.model_validate_json(run.out).agents}
    row = rows[garbage]
    assert (row.color, row.state) == ("red", "unknown")
    assert row.reasons[0].startswith(f"unknown: stamp unreadable: {paths[garbage]} on 127.0.0.1:")
    assert row.agent_version is not None  # the box answered: its health is still shown
    assert "sk-do-not-print-me" not in run.both
    text = await cli("status", "--repo", str(fleet.repo), "--window", "1")
    assert text.code == 1
    assert "unknown:" in text.out  # the table wraps the rest of the reason


async def test_apply_refuses_a_box_with_a_corrupt_stamp_and_writes_nothing(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """apply --yes: exit 1 naming the box, before anything is written on any box."""
    garbage, not_stamp, paths = _corrupt(fleet)
    before = _snapshot(fleet)
    run = await cli(
        "apply", "--repo", str(fleet.repo), "--yes", "--soak", "0.3",
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    assert run.code == 1, run.both
    # one group for the one cause, every box named whole, one example verbatim, its fix
    assert f"2 boxes: stamp unreadable: {', '.join(sorted((garbage, not_stamp)))}" in run.err
    assert any(
        f"e.g. {name}: stamp unreadable: {paths[name]}" in run.err for name in (garbage, not_stamp)
    ), run.err
    assert "repair or remove the box's stamp file" in run.err
    assert "nothing was touched" in run.err
    assert "Traceback" not in run.err
    assert _snapshot(fleet) == before
    assert all(b.counters.writes == 0 and b.counters.reloads == 0 for b in fleet.boxes.values())
