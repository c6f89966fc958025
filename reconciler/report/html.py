"""The rollout report as one self-contained HTML page (pure: a run record in, HTML text out).

Written beside the incident's markdown and JSON, and for every finished rollout. No
network at view time: the charts are inline SVG (report/charts.py), the styles
inline, and the data the page shows is embedded once more as
`<script type="application/json" id="report-data">` for tools (and tests) to read.

Content: the headline (outcome, trigger, the commit), the next command to run, the
timeline with its finish event, per wave and per gate the canary and baseline
series the gates measured (every `gates.waiting` sample and the verdict) against the
threshold, each box and what happened to it, what changed (the plan's changed
fields per box, with the revision each box came from), and the cost the canaries
burned as the cost gates measured it. Every text is escaped; only names, shas,
figures and messages appear, never a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from reconciler.render.stamp import rfc3339
from reconciler.report.charts import PALETTE, Series, line_chart, timeline_strip
from reconciler.rollout.runrecord import RunRecord

REPORT_VERSION = 1
_SERIES = ("canary", "baseline")


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _since(start: datetime, at: datetime) -> float:
    return round((at - start).total_seconds(), 3)


def _gate_series(run: RunRecord) -> list[dict[str, Any]]:
    """Per wave and gate: the samples the gate runner took, the verdict's last."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for at, kind, fields in run.timeline:
        if kind == "gates.waiting":
            figures = fields.get("pending")
        elif kind in ("gates.passed", "gates.failed"):
            figures = fields.get("figures")
        else:
            continue
        wave = fields.get("wave")
        if not isinstance(wave, int) or not isinstance(figures, list):
            continue
        start = run.wave_started_at.get(wave - 1, run.started_at)
        for f in figures:
            if not isinstance(f, dict) or "canary" not in f:
                continue
            gate = str(f.get("gate"))
            entry = out.setdefault(
                (wave, gate),
                {"wave": wave, "gate": gate, "metric": f.get("metric"), "threshold": None,
                 "verdict": None, "reason": None, "samples": []},
            )  # fmt: skip
            entry["threshold"] = _num(f.get("threshold"))
            if kind != "gates.waiting":
                entry["verdict"], entry["reason"] = f.get("outcome"), f.get("reason")
            entry["samples"].append(
                {
                    "t": _since(start, at),
                    "canary": _num(f.get("canary")),
                    "baseline": _num(f.get("baseline")),
                    "canary_samples": f.get("canary_samples"),
                    "baseline_samples": f.get("baseline_samples"),
                    "outcome": f.get("outcome"),
                }
            )
    return [out[k] for k in sorted(out)]


def _cost(gates: Sequence[Mapping[str, Any]], prices: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the canaries burned: cost per task x canary tasks at each cost gate's verdict."""
    burned = 0.0
    seen = False
    for g in gates:
        if g.get("metric") != "cost_per_task" or not g["samples"]:
            continue
        last = g["samples"][-1]
        per, n = last.get("canary"), last.get("canary_samples")
        if isinstance(per, float) and isinstance(n, int):
            burned += per * n
            seen = True
    if seen:
        return {
            "estimated_usd": round(burned, 6),
            "how": "canary cost per task x canary tasks, as the cost_per_task gates measured",
            "price_table": bool(prices),
        }
    return {
        "estimated_usd": None,
        "how": "no price table in fleet.yaml and no cost_per_task gate: cost not estimated",
        "price_table": bool(prices),
    }


def report_data(
    run: RunRecord,
    *,
    trigger: str | None = None,
    restored: Collection[str] = (),
    restore_failed: Collection[str] = (),
    prices: Mapping[str, Any] | None = None,
    diff: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able document."""
    state, start = run.state, run.started_at
    end = run.finished_at or (run.timeline[-1][0] if run.timeline else start)
    outcome = str(state.phase)
    commit = run.revision.split("+", 1)[0]
    timeline = [
        {"at": rfc3339(at), "t": _since(start, at), "kind": kind, **fields}
        for at, kind, fields in run.timeline
        if kind != "soak.tick"
    ]
    timeline.append({"at": rfc3339(end), "t": _since(start, end), "kind": "finish",
                     "outcome": outcome})  # fmt: skip
    failed = {f.agent: f.what for f in state.budget.spent}
    boxes = []
    for wave in state.spec.waves:
        for agent in wave.agents:
            status = str(state.status(agent))
            what = failed.get(agent)
            if agent in restore_failed:
                status = "restore-failed"
            elif agent in restored:
                sha = run.restored_shas.get(agent)
                what = f"restored to {sha[:12] if sha else 'no file'}" + (
                    f" after: {what}" if what else ""
                )
            boxes.append({"agent": agent, "wave": wave.index + 1, "status": status,
                          "what": what or ""})  # fmt: skip
    changes = [
        {
            "agent": step.agent,
            "tier": step.tier,
            "from_revision": step.stamp_revision,
            "to_revision": run.revision,
            "fields": [p.dotted for p in step.paths],
            "restart_required": [p.dotted for p in step.paths if p.restart_required],
            "cost_impacting": [p.dotted for p in step.paths if p.cost_impacting],
            "secrets": step.secrets,
            "target_sha": step.target_sha,
            "diff": [dict(d) for d in (diff or {}).get(step.agent, ())],
        }
        for step in run.plan.boxes
    ]
    gates = _gate_series(run)
    rolled_back = outcome in ("rolled-back", "rollback-failed") or bool(restored)
    finished = run.finished_at is not None
    if rolled_back:
        next_commands = [f"git revert {commit}", "reconcile apply"]
    elif not finished:
        next_commands = ["reconcile resume"]
    else:
        next_commands = []
    return {
        "report_version": REPORT_VERSION,
        "rollout_id": run.rollout_id,
        "fleet_id": run.fleet_id,
        "plan_id": run.plan.plan_id,
        "revision": run.revision,
        "commit": commit,
        "outcome": outcome,
        "trigger": trigger or state.trigger,
        "started_at": rfc3339(start),
        "finished_at": rfc3339(end),
        "next": next_commands,
        "timeline": timeline,
        "gates": gates,
        "boxes": boxes,
        "changes": changes,
        "cost": _cost(gates, prices),
    }


CSS = """
body{font-family:sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eef}
.bad{color:#b00;font-weight:bold}.ok{color:#070}.cmd{background:#222;color:#eee;padding:8px 12px;
font-family:monospace;display:inline-block;border-radius:4px}.charts svg{margin:6px}
"""


def _t(x: object) -> str:
    return escape("" if x is None else str(x))


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    th = "".join(f"<th>{_t(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_t(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _fields(entry: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in entry.items() if k not in ("at", "t", "kind")}
    if isinstance(rest.get("figures"), list):
        rest["figures"] = f"{len(rest['figures'])} gate figures"
    if isinstance(rest.get("pending"), list):
        rest["pending"] = f"{len(rest['pending'])} gates pending"
    text = ", ".join(f"{k}={v}" for k, v in rest.items())
    return text if len(text) <= 300 else text[:297] + "..."


def _diff_line(d: Mapping[str, Any]) -> str:
    where = d.get("source") or "?"
    was = f" (was {d['old_source']})" if d.get("old_source") else ""
    values = ""
    if d.get("old") is not None or d.get("new") is not None:
        values = f": {d.get('old')} -> {d.get('new')}"
    return f"{d['path']} {d['kind']} at {where}{was}{values}"


def _gate_chart(g: Mapping[str, Any]) -> str:
    series = []
    for i, name in enumerate(_SERIES):
        pts = tuple(
            (float(s["t"]), float(s[name])) for s in g["samples"] if s.get(name) is not None
        )
        series.append(Series(name, pts, PALETTE[i]))
    refs = {"threshold": g["threshold"]} if g.get("threshold") is not None else {}
    title = f"wave {g['wave']} · {g['gate']} ({g.get('metric')}): {g.get('verdict') or 'pending'}"
    return line_chart(title, series, references=refs, x_label="s into the wave")


def _embedded(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True)
    # Inside <script>: no "</script>" or "<!--" can close or confuse it.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(data: Mapping[str, Any]) -> str:
    """The self-contained page of `report_data`'s document."""
    bad = data["outcome"] != "done"
    head = (
        f"<h1>Rollout {_t(data['rollout_id'])}: "
        f'<span class="{"bad" if bad else "ok"}">{_t(data["outcome"])}</span></h1>'
        "<p>"
        f"fleet <b>{_t(data['fleet_id'])}</b> · commit <code>{_t(data['commit'])}</code> "
        f"(revision <code>{_t(data['revision'])}</code>) · plan "
        f"<code>{_t(str(data['plan_id'])[:12])}</code><br>"
        f"started {_t(data['started_at'])} · finished {_t(data['finished_at'])}"
        + (f"<br>trigger: <span class=bad>{_t(data['trigger'])}</span>" if data["trigger"] else "")
        + "</p>"
    )
    nxt = "".join(f'<div class="cmd">{_t(c)}</div><br>' for c in data["next"]) or (
        "<p>nothing: the rollout finished and every box is on the target.</p>"
    )
    strip = timeline_strip([(float(e["t"]), str(e["kind"])) for e in data["timeline"]])
    timeline = _table(
        ("t (s)", "at", "what", "details"),
        [(f"{e['t']:.1f}", e["at"], e["kind"], _fields(e)) for e in data["timeline"]],
    )
    charts = "".join(_gate_chart(g) for g in data["gates"]) or (
        "<p>no gate measured a canary in this rollout.</p>"
    )
    gate_rows = [
        (g["wave"], g["gate"], g.get("metric"), g.get("verdict"), g.get("threshold"),
         len(g["samples"]), g.get("reason"))
        for g in data["gates"]
    ]  # fmt: skip
    gate_head = ("wave", "gate", "metric", "verdict", "threshold", "samples", "why")
    gate_table = _table(gate_head, gate_rows) if gate_rows else ""
    boxes = _table(
        ("wave", "agent", "status", "what happened"),
        [(b["wave"], b["agent"], b["status"], b["what"]) for b in data["boxes"]],
    )
    changes = _table(
        ("agent", "tier", "from revision", "to revision", "fields changed", "restart",
         "cost-impacting", "secrets", "diff (where set)"),
        [
            (c["agent"], c["tier"], c["from_revision"] or "unmanaged", c["to_revision"],
             ", ".join(c["fields"]) or "-", ", ".join(c["restart_required"]) or "-",
             ", ".join(c["cost_impacting"]) or "-", "changed" if c["secrets"] else "-",
             "; ".join(_diff_line(d) for d in c.get("diff", ())) or "not available")
            for c in data["changes"]
        ],
    )  # fmt: skip
    cost = data["cost"]
    cost_html = (
        f"<p>about <b>${cost['estimated_usd']:.4f}</b> ({_t(cost['how'])})</p>"
        if cost["estimated_usd"] is not None
        else f"<p>{_t(cost['how'])}</p>"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>Rollout {_t(data['rollout_id'])} {_t(data['outcome'])}</title>"
        f"<style>{CSS}</style></head><body>"
        f"{head}<h2>Next</h2>{nxt}"
        f"<h2>Timeline</h2>{strip}{timeline}"
        f"<h2>Gates: canary and baseline against the threshold</h2>"
        f'<div class="charts">{charts}</div>' + gate_table + f"<h2>Boxes</h2>{boxes}"
        f"<h2>What changed</h2>{changes}"
        f"<h2>Cost the canaries burned</h2>{cost_html}"
        f'<script type="application/json" id="report-data">{_embedded(data)}</script>'
        "</body></html>\n"
    )
