"""The incident report of a rolled-back rollout: one JSON document, rendered to markdown too.

Built from what the driver saw (its timeline of notes, the machine's final
state, the machine's WriteIncident command): the trigger, the failing wave and
boxes, the check that failed with its figures, what was restored and what was
not, and two headline durations: time to detect (the failing wave's start to
the rollback's start) and time to roll back (the rollback's start to the end).
Only names, shas, verdicts and messages: never a secret value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from reconciler.render.stamp import rfc3339
from reconciler.rollout.commands import WriteIncident
from reconciler.rollout.runrecord import RunRecord

_CHECK_KINDS = ("box.failed", "watchdog.failed", "soak.problem", "gates.failed")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def incident_doc(run: RunRecord, cmd: WriteIncident) -> dict[str, Any]:
    """The incident as a JSON-able document."""
    state = run.state
    wave = min(state.wave, len(state.spec.waves) - 1) if state.spec.waves else 0
    wave_start = run.wave_started_at.get(wave)
    checks = [
        {"at": rfc3339(at), "kind": kind, **fields}
        for at, kind, fields in run.timeline
        if kind in _CHECK_KINDS
    ]
    return {
        "incident_version": 1,
        "rollout_id": run.rollout_id,
        "fleet_id": run.fleet_id,
        "plan_id": run.plan.plan_id,
        "revision": run.revision,
        "outcome": str(state.phase),
        "trigger": cmd.trigger,
        "failing_wave": wave + 1,
        "failing_wave_agents": list(state.spec.waves[wave].agents) if state.spec.waves else [],
        "failed": [{"agent": f.agent, "what": f.what} for f in state.budget.spent],
        "failed_checks": checks,
        "restored": [{"agent": a, "to_sha": run.restored_shas.get(a)} for a in cmd.restored],
        "restore_failed": list(cmd.restore_failed),
        "time_to_detect_s": _seconds(wave_start, run.detected_at),
        "time_to_roll_back_s": _seconds(run.detected_at, run.finished_at),
        "started_at": rfc3339(run.started_at),
        "timeline": [
            {"at": rfc3339(at), "kind": kind, **fields}
            for at, kind, fields in run.timeline
            if kind != "soak.tick"
        ],
    }


def render_incident_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _fields(entry: dict[str, Any]) -> str:
    rest = {k: v for k, v in entry.items() if k not in ("at", "kind")}
    if isinstance(rest.get("figures"), list):
        figures = rest.pop("figures")
        failed = [str(f.get("gate")) for f in figures if isinstance(f, dict) and not f.get("ok")]
        rest["gates"] = f"{len(figures)} checked, failed: {', '.join(failed) or 'none'}"
    return ", ".join(f"{k}={v}" for k, v in rest.items())


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))


def _figures_table(checks: list[dict[str, Any]]) -> list[str]:
    """Every gate figure of the failed checks as one table: what was compared, and how."""
    rows: list[dict[str, Any]] = []
    for c in checks:
        figures = c.get("figures")
        if isinstance(figures, list):
            rows.extend(f for f in figures if isinstance(f, dict))
    if not rows:
        return []
    out = [
        "",
        "| gate | result | canary | baseline | threshold | samples (canary/baseline) | baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        result = f.get("outcome") or ("pass" if f.get("ok") else "fail")
        if "canary" not in f:
            out.append(f"| {f.get('gate')} | {result} | {f.get('detail', '')} | | | | |")
            continue
        out.append(
            f"| {f.get('gate')} | **{result}** | {_num(f.get('canary'))} | "
            f"{_num(f.get('baseline'))} | {_num(f.get('threshold'))} | "
            f"{f.get('canary_samples')}/{f.get('baseline_samples')} | "
            f"{f.get('baseline_kind', '')} |"
        )
    return out


WAVE_NAMES_SHOWN = 12  # a 1,000-box wave's names belong in the JSON, not in the headline


def _some(names: list[str]) -> str:
    """The first names of a wave, then how many more (all of them are in the JSON)."""
    more = len(names) - WAVE_NAMES_SHOWN
    shown = ", ".join(names[:WAVE_NAMES_SHOWN])
    return f"{shown} and {more} more" if more > 0 else shown


def render_incident_markdown(doc: dict[str, Any]) -> str:
    """The incident for humans: headline, what failed, what was restored, the timeline."""
    lines = [
        f"# Incident: rollout {doc['rollout_id']} {doc['outcome']}",
        "",
        f"- fleet: `{doc['fleet_id']}`, revision `{doc['revision']}`, plan `{doc['plan_id'][:12]}`",
        f"- trigger: {doc['trigger']}",
        f"- failing wave: {doc['failing_wave']} ({_some(doc['failing_wave_agents'])})",
        f"- time to detect: {doc['time_to_detect_s']} s; "
        f"time to roll back: {doc['time_to_roll_back_s']} s",
        "",
        "## Failed boxes",
        "",
    ]
    lines += [f"- **{f['agent']}**: {f['what']}" for f in doc["failed"]] or ["- none"]
    lines += ["", "## Checks that failed", ""]
    lines += [f"- {c['at']} `{c['kind']}` {_fields(c)}" for c in doc["failed_checks"]] or ["- none"]
    lines += _figures_table(doc["failed_checks"])
    lines += ["", "## Restored", ""]
    lines += [f"- {r['agent']} -> `{(r['to_sha'] or 'none')[:12]}`" for r in doc["restored"]] or [
        "- none"
    ]
    if doc["restore_failed"]:
        lines += ["", "## ROLLBACK FAILED: these boxes need a human now", ""]
        lines += [f"- **{a}**" for a in doc["restore_failed"]]
    lines += ["", "## Timeline", "", "| at | what | details |", "|---|---|---|"]
    lines += [f"| {e['at']} | {e['kind']} | {_fields(e)} |" for e in doc["timeline"]]
    return "\n".join(lines) + "\n"
