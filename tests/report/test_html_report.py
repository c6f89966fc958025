"""The HTML rollout report (pure): series from the run record, escaping, the embedded data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from reconciler.report.charts import Series, line_chart
from reconciler.report.html import render_html, report_data
from reconciler.rollout.runrecord import RunRecord
from reconciler.rollout.state import Rollout
from tests.plan.builders import change, plan_of

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOSTILE = '</script><img src=x onerror="alert(1)">&amp;'


def _figure(canary: float, outcome: str, ok: bool) -> dict[str, object]:
    return {"gate": "task-errors", "metric": "error_rate", "outcome": outcome, "ok": ok,
            "reason": HOSTILE, "canary": canary, "baseline": 0.01, "threshold": 0.015,
            "canary_samples": 40, "baseline_samples": 90}  # fmt: skip


def _run() -> RunRecord:
    plan = plan_of([change("agent-0001"), change("agent-0002")], waves=(1, "100%"),
                   revision="abc123+dirty-ff")  # fmt: skip
    run = RunRecord(plan, "r-1", "acme-support", "abc123+dirty-ff", Rollout.start(plan), T0)
    run.wave_started_at[0] = T0 + timedelta(seconds=1)
    run.timeline += [
        (T0, "rollout.started", {"rollout_id": "r-1"}),
        (T0 + timedelta(seconds=7), "gates.waiting", {"wave": 1, "pending": [
            {**_figure(0.2, "inconclusive", False)}]}),
        (T0 + timedelta(seconds=9), "gates.failed", {"wave": 1, "figures": [
            {"gate": "watchdog", "ok": True, "detail": "fine"}, _figure(0.3, "fail", False)]}),
        (T0 + timedelta(seconds=10), "rollback.started", {"trigger": HOSTILE}),
    ]  # fmt: skip
    run.finished_at = T0 + timedelta(seconds=12)
    return run


def test_series_threshold_finish_and_next_command() -> None:
    data = report_data(_run(), trigger=HOSTILE, restored=["agent-0001"])
    (gate,) = data["gates"]
    assert (gate["wave"], gate["gate"], gate["threshold"], gate["verdict"]) == (
        1, "task-errors", 0.015, "fail")  # fmt: skip
    assert [(s["t"], s["canary"], s["baseline"]) for s in gate["samples"]] == [
        (6.0, 0.2, 0.01), (8.0, 0.3, 0.01)]  # fmt: skip
    assert data["timeline"][-1] == {"at": "2026-12-01T12:00:12Z", "t": 12.0, "kind": "finish",
                                    "outcome": "planned"}  # fmt: skip
    assert data["commit"] == "abc123" and data["next"] == ["git revert abc123", "reconcile apply"]
    boxes = {b["agent"]: b for b in data["boxes"]}
    assert boxes["agent-0001"]["what"].startswith("restored to")
    assert data["changes"][0]["fields"] == ["prompt"]
    assert data["cost"]["estimated_usd"] is None and "no price table" in data["cost"]["how"]


def test_every_text_is_escaped_and_the_data_embedded_intact() -> None:
    data = report_data(_run(), trigger=HOSTILE, restored=["agent-0001"])
    page = render_html(data)
    assert "<img" not in page and 'onerror="alert' not in page
    assert page.count("</script>") == 1  # only the data element's own end
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m and json.loads(m.group(1)) == json.loads(json.dumps(data))
    assert "<svg" in page and "threshold" in page and "git revert abc123" in page


def test_cost_from_the_cost_gate() -> None:
    run = _run()
    cost = {"gate": "cost", "metric": "cost_per_task", "outcome": "pass", "ok": True,
            "canary": 0.002, "baseline": 0.002, "canary_samples": 50}  # fmt: skip
    run.timeline.append((T0 + timedelta(seconds=9), "gates.passed", {"wave": 1, "figures": [cost]}))
    assert report_data(run)["cost"]["estimated_usd"] == 0.1


def test_chart_draws_points_and_says_when_empty() -> None:
    svg = line_chart("<gate>", [Series("canary", ((1.0, 2.0),), "#d62728")],
                     references={"threshold": 1.5})  # fmt: skip
    assert svg.count("<circle") == 1 and "stroke-dasharray" in svg and "&lt;gate&gt;" in svg
    assert "no samples recorded" in line_chart("x", [Series("canary", (), "#000")])
