"""Journey: every JSON output of a real demo run validates against its schema in schemas/.

One 4-box `demo up` fleet for the module, its repo's head a pending tier-fast change:

1. `status --format json` (and two `--watch` refreshes piped, as JSON and as change
   lines): the fast boxes are not on the head revision, so exit 2 and never "every
   agent is green"; `--format markdown` is refused (exit 1) by status and history.
2. `diff --format json` and `apply --dry-run --format json` (the plan).
3. `apply --yes --format json` with the last fast box crashing on its reload: exit 3,
   the first line the plan (a `PlanEvent`: `{"event": "plan", "plan": Plan}`), every
   other line an `Event`, the incident report an `Incident`.
4. `history --format json` (journal and `--from-boxes`) validates; the text prints the
   revision whole; the journal-sourced rollback time agrees with the journal's own rows
   (the box failure's step to the last restore's), and the stamps-sourced row does not
   invent one.
5. After `git revert` of the change every box runs the head's config: status exits 0.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.testing.journeys import Demo, demo_fleet, explained

pytestmark = pytest.mark.timeout(180)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def check(name: str, doc: Any) -> None:
    """`doc` validates against schemas/NAME.schema.json (every error listed)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(doc)
    ]
    assert errors == [], f"{name}: {errors}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    with demo_fleet(tmp_path_factory.mktemp("schemas") / "demo", 4) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schemas-state") / "state"


def test_status_json_and_watch_validate_and_say_out_of_date(demo: Demo, state: Path) -> None:
    """Out-of-date boxes: exit 2 in every format; each watch refresh is one valid document."""
    fast = set(demo.tier("fast"))
    r = demo.reconcile("status", "--window", "1", "--format", "json", "--state-dir", state)
    with explained(r.describe()):
        r.expect(2).refuse("Traceback")
        doc = json.loads(r.stdout)
        check("status", doc)
        assert set(doc["out_of_date"]) == fast and doc["exit_code"] == 2
        assert doc["head_revision"] == demo.head()
    r = demo.reconcile("status", "--window", "1", "--state-dir", state)
    with explained(r.describe()):
        r.expect(2, "not on the head revision").refuse("every agent is green", "Traceback")
        for name in fast:  # one line each, the name whole
            assert sum(name in line for line in r.stdout.splitlines()) == 1
    r = demo.reconcile("status", "--window", "1", "--watch", "0.5", "--count", "2",
                       "--format", "json")  # fmt: skip
    with explained(r.describe()):
        r.expect(2)
        docs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert len(docs) == 2
        for d in docs:
            check("status", d)
    r = demo.reconcile("status", "--window", "1", "--watch", "0.5", "--count", "2")
    with explained(r.describe()):
        r.expect(2)
        lines = r.stdout.splitlines()
        assert len(lines) == 2 and all(f"out-of-date {len(fast)} " in x for x in lines)
        assert lines[1].endswith("no change") or "->" in lines[1]
    for command in ("status", "history"):
        r = demo.reconcile(command, "--format", "markdown")
        r.expect(1, "text or json").refuse("Traceback")


def test_diff_and_plan_json_validate(demo: Demo, state: Path) -> None:
    """`diff --format json` and the dry run's plan document."""
    r = demo.reconcile("diff", "--format", "json")
    with explained(r.describe()):
        r.expect(0)
        check("diff", json.loads(r.stdout))
    r = demo.reconcile("apply", "--dry-run", "--format", "json", "--state-dir", state)
    with explained(r.describe()):
        r.expect(0)
        plan = json.loads(r.stdout)
        check("plan", plan)
        assert set(plan["waves"][0]["agents"]) <= set(demo.tier("fast"))


def _journal_rollback_s(state: Path) -> float:
    """From the journal's rows: the failed box's event to the last box restored."""
    with sqlite3.connect(state / "reconciler.sqlite3") as db:
        rid = db.execute("SELECT rollout_id FROM rollouts ORDER BY started_at DESC").fetchone()[0]
        rows = db.execute(
            "SELECT at, body FROM steps WHERE rollout_id = ? AND kind = 'event'", (rid,)
        ).fetchall()
    kinds = [(at, json.loads(body)["type"]) for at, body in rows]
    failed = min(at for at, k in kinds if k == "BoxFailed")
    restored = max(at for at, k in kinds if k == "BoxRestored")
    return float(restored - failed)


def test_apply_events_incident_and_history_validate(demo: Demo, state: Path) -> None:
    """A rolled-back apply: events, incident and history validate; history's rollback time is
    the journal's, and the revision prints whole."""
    sick = demo.tier("fast")[-1]
    demo.fault(sick, "crash-on-reload")
    try:
        r = demo.reconcile("apply", "--yes", "--format", "json", "--state-dir", state)
    finally:
        demo.clear(sick)
    with explained(r.describe()):
        r.expect(3).refuse("Traceback")
        docs = r.events
        assert docs, "no JSON lines"
        first = docs.pop(0)  # the plan first, as one document
        check("plan-event", first)
        assert first["event"] == "plan", first
        check("plan", first["plan"])
        assert sick in {a for w in first["plan"]["waves"] for a in w["agents"]}
        assert all(d["event"] != "plan" for d in docs)
        lines = [x for x in r.stdout.splitlines() if x.strip()]
        assert json.loads(lines[0]) == first  # JSON lines only on stdout, the plan on top
        for d in docs:
            check("events", d)
        kinds = [d["event"] for d in docs]
        assert "rollout.started" in kinds and "box.restored" in kinds
        incident = json.loads(next((state / "incidents").glob("*.json")).read_text())
        check("incident", incident)

    r = demo.reconcile("history", "--format", "json", "--state-dir", state)
    with explained(r.describe()):
        r.expect(0)
        doc = json.loads(r.stdout)
        check("history", doc)
        row = doc["rollouts"][0]
        assert row["outcome"] == "rolled-back" and row["revision"] == demo.head()
        journal = _journal_rollback_s(state)
        assert abs(row["time_to_roll_back_s"] - journal) < 0.5, (row, journal)
        assert row["time_to_roll_back_s"] == incident["time_to_roll_back_s"]
    r = demo.reconcile("history", "--state-dir", state)
    with explained(r.describe()):
        r.expect(0, demo.head())  # the whole revision
    r = demo.reconcile("history", "--from-boxes", "--format", "json")
    with explained(r.describe()):
        r.expect(0)
        doc = json.loads(r.stdout)
        check("history", doc)
        row = doc["rollouts"][0]
        assert row["source"] == "stamps" and row["outcome"] == "rolled-back"
        assert row["time_to_roll_back_s"] is None and row["restore_span_s"] is not None


def test_status_exits_0_when_every_box_runs_the_head(demo: Demo, state: Path) -> None:
    """After reverting the change the boxes (restored) run the head's config: exit 0."""
    demo.revert_head()
    r = demo.reconcile("status", "--window", "1", "--state-dir", state)
    with explained(r.describe()):
        r.expect(0, "every agent is green and on the head revision").refuse("Traceback")
