"""The fleet diff for a terminal: headline, then one block per group of agents.

Plain text (no markup), grouped: agents that make the same change show once,
named by what they share ("140 agents in tier fast"). Rollout changes first
(cost-impacting before the rest; a moved config_path is one), then [access]
changes that roll nothing out, settings that roll nothing out, fleet-wide
[access] changes, fleet settings, and boxes that could not be read or were
refused. Every [access] change is tagged so, with old -> new and its file.
"""

from __future__ import annotations

from reconciler.diff.group import Group, group_agents
from reconciler.diff.model import PROBLEM_STATUSES, AgentStatus, FieldChange, FleetDiff
from reconciler.diff.summary import Summary, summarise
from reconciler.report.diff_values import (
    alert_lines,
    change_text,
    delta_words,
    flags,
    fleet_cost_lines,
    group_cost,
    plural,
    secret_file_text,
    secret_files_line,
    secrets_text,
    status_word,
    where_text,
)


def headline(diff: FleetDiff, s: Summary) -> list[str]:
    """The first lines: what is compared, and the counts."""
    lines = [f"Fleet diff {diff.fleet_id}: {diff.base} → {diff.head}"]
    if not s.has_changes and not s.unknown and not s.foreign:
        lines.append(f"No changes ({s.unchanged} agents unchanged).")
        return lines
    parts = [
        f"{n} {word}"
        for n, word in (
            (s.changed, "changed"),
            (s.added, "added"),
            (s.removed, "removed"),
            (s.drifted, "drifted"),
            (s.moved, "moved"),
        )
        if n
    ]
    line = f"{plural(s.rollout, 'agent')} to roll out" + (f" ({', '.join(parts)})" if parts else "")
    if s.settings_only:
        line += f"; {s.settings_only} with settings changes only (no rollout)"
    lines.append(line + f"; {s.unchanged} unchanged.")
    if s.access or s.fleet_access:
        lines.append(access_line(diff, s))
    if s.cost_impacting:
        who = ", ".join(diff.approvers) or "nobody configured (fleet.review)"
        lines.append(
            f"Cost-impacting: {plural(s.cost_impacting, 'agent')} (estimated cost change:"
            f" {delta_words(diff, s.cost_delta_per_day)}); review by {who}{rules_note(diff)}."
        )
    lines += fleet_cost_lines(diff)
    if s.restart_required:
        lines.append(f"Restart required: {plural(s.restart_required, 'agent')}.")
    if s.alerts:
        lines.append(f"Alerts: {plural(s.alerts, 'alert rule')} added, removed or changed.")
    secrets = secret_files_line(diff)
    if secrets:
        lines.append(secrets)
    if s.unknown or s.foreign:
        lines.append(
            f"Not compared: {s.unknown} unknown (unreachable or unreadable stamp),"
            f" {s.foreign} refused (foreign)."
        )
    return lines


def access_line(diff: FleetDiff, s: Summary) -> str:
    """'Access: 3 agents, 1 fleet-wide setting change where or how ...; review by ...'."""
    what = [
        plural(n, w) for n, w in ((s.access, "agent"), (s.fleet_access, "fleet-wide setting")) if n
    ]
    moved = f" ({s.moved} moved: written to the new path)" if s.moved else ""
    who = ", ".join(diff.access_approvers) or "nobody configured (fleet.review.access_approvers)"
    return (
        f"Access: {' and '.join(what)}{moved} change where or how reconciler connects, what it"
        f" runs, or the review rules [access]; review by {who}{rules_note(diff)}."
    )


def rules_note(diff: FleetDiff) -> str:
    """' (rules of the base main)' in pull-request mode: the rules a change is judged by."""
    return f" (rules of the base {diff.rules_from})" if diff.mode == "pr" else ""


def _change_line(c: FieldChange, source: str | None) -> str:
    tags = flags(c)
    where = f"  ({source})" if source else ""
    return f"    {change_text(c, 70)}{where}" + (f"  [{', '.join(tags)}]" if tags else "")


def _names(g: Group, limit: int) -> str:
    names = g.names
    more = f", … and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _why(agent: str, reason: str | None) -> str:
    """A problem box's reason without the agent name the transport already put in front."""
    return (reason or "no reason given").removeprefix(f"{agent}: ")


def _group(g: Group, names_limit: int) -> list[str]:
    a = g.first
    word = status_word(g)
    status = "" if word == AgentStatus.CHANGED else f" [{word}]"
    tags = [
        t
        for t, on in (
            ("cost", g.cost_impacting),
            ("restart", g.restart_required),
            ("access", g.access),
        )
        if on
    ]
    lines = [f"  {g.scope()}{status}" + (f"  [{', '.join(tags)}]" if tags else "")]
    for i, c in enumerate(a.changes):
        sources = g.sources(i)
        lines.append(_change_line(c, ", ".join(sources) if len(sources) <= 3 else "several"))
    for c in a.access:
        lines.append(_change_line(c, where_text(c)))
    for c in a.settings:
        lines.append(_change_line(c, c.source) + "  (setting, no rollout)")
    if a.secrets is not None:
        lines.append(f"    {secrets_text(a.secrets)}  [secret]")
    if a.format_only:
        lines.append("    the file's bytes differ (key order or style) but every field is equal")
    cost = group_cost(g)
    if cost:
        lines.append(f"    cost: {cost}")
    if a.status in PROBLEM_STATUSES:
        lines.extend(f"    {m.agent}: {_why(m.agent, m.reason)}" for m in g.agents)
    elif a.reason and g.size == 1:
        lines.append(f"    {a.reason}")
    elif g.size > 1:
        lines.append(f"    agents: {_names(g, names_limit)}")
    return lines


def render_text(diff: FleetDiff, *, names_limit: int = 12) -> str:
    """The whole text report."""
    s = summarise(diff)
    lines = headline(diff, s)
    groups = group_agents(diff.agents)
    sections: list[tuple[str, list[Group]]] = [
        ("Changes", [g for g in groups if g.first.rollout]),
        (
            "Access, no rollout",
            [
                g
                for g in groups
                if not g.first.rollout and g.access and g.status not in PROBLEM_STATUSES
            ],
        ),
        (
            "Settings, no rollout",
            [
                g
                for g in groups
                if not g.first.rollout and not g.access and g.status not in PROBLEM_STATUSES
            ],
        ),
        ("Not compared", [g for g in groups if g.status in PROBLEM_STATUSES]),
    ]
    for title, members in sections:
        if not members:
            continue
        lines += ["", f"{title}:"]
        for g in members:
            lines += _group(g, names_limit)
    if diff.fleet_access:
        lines += ["", "Access, fleet-wide:"]
        lines += [_change_line(c, where_text(c)) for c in diff.fleet_access]
    if diff.fleet_settings:
        lines += ["", "Fleet settings (fleet.yaml, no rollout):"]
        lines += [_change_line(c, None) for c in diff.fleet_settings]
    if diff.alerts:
        lines += ["", "Alerts (Prometheus rules, no agent rollout):"]
        lines += [f"  {line}" for c in diff.alerts for line in alert_lines(c)]
    if diff.secret_files:
        lines += ["", "Secrets (encrypted files in secrets/, values never shown):"]
        lines += [f"  {secret_file_text(c)}" for c in diff.secret_files]
    return "\n".join(lines) + "\n"
