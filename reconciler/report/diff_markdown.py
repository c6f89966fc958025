"""The fleet diff as a pull-request comment (GitHub-flavoured markdown).

Layout: a headline, the review notes for [access] changes (naming
fleet.review.access_approvers) and cost-impacting ones (naming
fleet.review.cost_impacting_approvers), both as the base revision sets them,
a summary table with one row per group of agents sharing a change set, the
[access] table (every change of where and how reconciler connects or what it
runs, old -> new and the file that set it, by group and fleet-wide), then
collapsed `<details>` per group: cost-impacting first, other rollout changes,
[access] and settings that roll nothing out, fleet.yaml settings, and boxes
not compared.

A comment must stay under GitHub's 65,536 characters, so the report shrinks
in steps until it fits, and says what it left out: first agent lists are cut
to a few names per group, then the per-group details go (the summary table
stays), and last the table keeps only the first groups in reading order.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from reconciler.diff.group import Group, group_agents
from reconciler.diff.model import PROBLEM_STATUSES, AlertChange, ChangeKind, FieldChange, FleetDiff
from reconciler.diff.summary import Summary, summarise
from reconciler.report.diff_values import (
    basis_text,
    cost_cell,
    delta_words,
    flags,
    group_cost,
    missing_text,
    plural,
    secret_file_text,
    secret_files_line,
    secrets_text,
    show,
    signed,
    status_word,
    usd,
    what_line,
    where_text,
)

GITHUB_LIMIT: Final = 65_536
# Room for whatever a CI job wraps around the report (a marker, a link to the run).
DEFAULT_BUDGET: Final = GITHUB_LIMIT - 1_536
_CUT_NAMES: Final = 20
_TEXT_DIFF_LINES: Final = 60


@dataclass(frozen=True, slots=True)
class _Level:
    """How much detail to render: agent names per group, details, groups in the table."""

    names: int | None = None  # None: every name
    details: bool = True
    groups: int | None = None  # None: every group


def code(text: str) -> str:
    """Inline code that survives a table cell: pipes escaped, backticks fenced."""
    text = text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _summary_line(g: Group) -> str:
    return f"{g.scope()}: {what_line(g.first)}"


def _flags_cell(g: Group) -> str:
    a = g.first
    words = sorted({w for c in (*a.changes, *a.access) for w in flags(c)})
    if a.secrets is not None and a.secrets.changed and "secret" not in words:
        words.append("secret")
    if (a.settings or a.access) and not a.rollout:
        words.append("no rollout")
    return ", ".join(f"**{w}**" if w in ("cost", "access") else w for w in words)


def _row(g: Group) -> str:
    return (
        f"| {status_word(g)} | {html.escape(g.scope())} | {code(what_line(g.first))} "
        f"| {_flags_cell(g)} | {cost_cell(g)} |"
    )


def _table(groups: Sequence[Group]) -> list[str]:
    header = ["| status | agents | change | flags | est. cost |", "|---|---|---|---|---|"]
    return [*header, *(_row(g) for g in groups)]


def _fence(body: str) -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return ticks


def _text_diff(c: FieldChange) -> list[str]:
    """A unified diff for a multi-line string change (a prompt), cut to a readable size."""
    if not (isinstance(c.old, str) and isinstance(c.new, str)):
        return []
    if "\n" not in c.old.rstrip("\n") and "\n" not in c.new.rstrip("\n"):
        return []
    body = list(
        difflib.unified_diff(c.old.splitlines(), c.new.splitlines(), "old", "new", lineterm="", n=2)
    )
    if len(body) > _TEXT_DIFF_LINES:
        body = [*body[:_TEXT_DIFF_LINES], f"… {len(body) - _TEXT_DIFF_LINES} more lines"]
    text = "\n".join(body)
    fence = _fence(text)
    return ["", f"`{c.dotted}`:", "", f"{fence}diff", text, fence]


def _change_rows(g: Group) -> list[str]:
    a = g.first
    lines = ["| field | change | old | new | set at | flags |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(a.changes):
        sources = g.sources(i)
        where = ", ".join(code(s) for s in sources[:3])
        if len(sources) > 3:
            where += f" and {len(sources) - 3} more"
        old = code(show(c.old, 80)) if c.kind != "added" else ""
        new = code(show(c.new, 80)) if c.kind != "removed" else ""
        lines.append(
            f"| {code(c.dotted)} | {c.kind} | {old} | {new} | {where} | {', '.join(flags(c))} |"
        )
    for c in a.access:
        old = code(show(c.old, 80)) if c.kind != "added" else ""
        new = code(show(c.new, 80)) if c.kind != "removed" else ""
        where = code(where_text(c)) if c.source or c.old_source else ""
        lines.append(
            f"| {code(c.dotted)} | {c.kind} | {old} | {new} | {where} | {', '.join(flags(c))} |"
        )
    for c in a.settings:
        old = code(show(c.old, 80)) if c.kind != "added" else ""
        new = code(show(c.new, 80)) if c.kind != "removed" else ""
        where = code(c.source) if c.source else ""
        lines.append(f"| {code(c.dotted)} | {c.kind} | {old} | {new} | {where} | no rollout |")
    return lines if len(lines) > 2 else []


def _names(g: Group, limit: int | None) -> str:
    names = g.names if limit is None else g.names[:limit]
    text = ", ".join(code(n) for n in names)
    if len(names) < g.size:
        text += f" … and {g.size - len(names)} more"
    return text


def _details(g: Group, level: _Level) -> list[str]:
    a = g.first
    lines = [
        f"<details><summary>{html.escape(_summary_line(g))}</summary>",
        "",
    ]
    lines += _change_rows(g)
    for c in a.changes:
        lines += _text_diff(c)
    notes: list[str] = []
    if a.secrets is not None:
        notes.append(f"Secrets: {secrets_text(a.secrets)} (fingerprints only, never values).")
    if a.format_only:
        notes.append("The file's bytes differ (key order or style) but every field is equal.")
    cost = group_cost(g)
    if cost:
        notes.append(f"Cost: {cost}.")
    if a.restart_required:
        notes.append("Needs a restart (x-restart-required), not only a reload.")
    if a.status in PROBLEM_STATUSES:
        notes += [f"- {code(m.agent)}: {m.reason or 'no reason given'}" for m in g.agents]
    elif a.reason:
        notes.append(f"{a.reason}.")
    if notes:
        lines += ["", *notes]
    if g.size > 1 and a.status not in PROBLEM_STATUSES and level.names != 0:
        lines += ["", f"Agents ({g.size}): {_names(g, level.names)}"]
    return [*lines, "", "</details>", ""]


def _access_row(who: str, c: FieldChange) -> str:
    old = code(show(c.old, 80)) if c.kind != "added" else ""
    new = code(show(c.new, 80)) if c.kind != "removed" else ""
    where = code(where_text(c)) if c.source or c.old_source else ""
    return f"| {who} | {code(c.dotted)} | {old} | {new} | {where} | {', '.join(flags(c))} |"


def _access_table(diff: FleetDiff, shown: Sequence[Group]) -> list[str]:
    """Every [access] change of the shown groups and every fleet-wide one: old, new, set at."""
    rows = [_access_row(html.escape(g.scope()), c) for g in shown for c in g.first.access]
    rows += [_access_row(c.source or "fleet.yaml", c) for c in diff.fleet_access]
    if not rows:
        return []
    return [
        "",
        "#### Access: where and how reconciler connects, what it runs, who reviews",
        "",
        "| agents | field | old | new | set at | flags |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def _review_notes(diff: FleetDiff, s: Summary) -> list[str]:
    """The [access] and cost-impacting review notes, naming the base's approvers."""
    lines: list[str] = []
    rules = f", as the base `{diff.rules_from}` sets it" if diff.mode == "pr" else ""
    if s.access or s.fleet_access:
        what = " and ".join(
            plural(n, w)
            for n, w in ((s.access, "agent"), (s.fleet_access, "fleet-wide setting"))
            if n
        )
        moved = (
            f" {plural(s.moved, 'agent')} move their config or secrets file: apply writes the"
            " payload and the secrets to the new path."
            if s.moved
            else ""
        )
        who = ", ".join(diff.access_approvers) or "nobody (set fleet.review.access_approvers)"
        lines += [
            "",
            "> [!WARNING]",
            f"> **Access changes on {what}** (where or how reconciler connects, what it runs,"
            f" or the review rules) need review by {who}"
            f" (`fleet.review.access_approvers`{rules}).{moved}",
        ]
    if s.cost_impacting:
        who = ", ".join(diff.approvers) or "nobody (set fleet.review.cost_impacting_approvers)"
        lines += [
            "",
            "> [!IMPORTANT]",
            f"> **Cost-impacting changes on {plural(s.cost_impacting, 'agent')}** need review"
            f" by {who}"
            f" (`fleet.review.cost_impacting_approvers`{rules})."
            f" Estimated cost change: {delta_words(diff, s.cost_delta_per_day)}.",
        ]
    secrets = secret_files_line(diff)
    if secrets:
        lines += ["", "> [!WARNING]", f"> {html.escape(secrets, quote=False)}"]
    lines += _cost_lines(diff)
    return lines


def _cost_lines(diff: FleetDiff) -> list[str]:
    """The whole diff's estimate as a small table: old → new per day and month, and its basis."""
    t = diff.cost
    out: list[str] = []
    if t is not None:
        out += [
            "",
            "| cost estimate | now | after | change |",
            "|---|---|---|---|",
            f"| per day | {usd(t.now_per_day)} | {usd(t.new_per_day)} | "
            f"**{signed(t.delta_per_day)}** |",
            f"| per month (730 h) | {usd(t.now_per_month)} | {usd(t.new_per_month)} | "
            f"**{signed(t.delta_per_month)}** |",
            "",
            f"<sub>{html.escape(basis_text(t), quote=False)}.</sub>",
        ]
    missing = sorted({m for a in diff.agents if a.cost for m in a.cost.missing_models})
    if missing:
        out += ["", f"Not priced: {html.escape(missing_text(missing), quote=False)}."]
    return out


def _headline(diff: FleetDiff, s: Summary) -> list[str]:
    lines = [f"### Fleet diff: {code(diff.fleet_id)}, {code(diff.base)} → {code(diff.head)}", ""]
    if not s.has_changes and not s.unknown and not s.foreign:
        return [*lines, f"No changes: all {s.unchanged} agents stay as they are."]
    parts = [
        f"{n} {word}"
        for n, word in (
            (s.changed, "changed"),
            (s.added, "added"),
            (s.removed, "removed"),
            (s.drifted, "drifted"),
            (s.moved, "moved"),
            (s.secrets_changed, "with new secrets"),
        )
        if n
    ]
    line = f"**{plural(s.rollout, 'agent')} to roll out**" + (
        f" ({', '.join(parts)})" if parts else ""
    )
    if s.settings_only:
        line += f" · {s.settings_only} with settings changes only (no rollout)"
    if s.access:
        line += f" · **{plural(s.access, 'agent')} with [access] changes**"
    if s.fleet_access:
        line += f" · **{plural(s.fleet_access, 'fleet-wide [access] change')}**"
    if s.fleet_settings:
        line += f" · {plural(s.fleet_settings, 'fleet.yaml setting')}"
    if s.alerts:
        line += f" · {plural(s.alerts, 'alert rule')} changed"
    line += f" · {s.unchanged} unchanged"
    if s.restart_required:
        line += f" · {s.restart_required} need a restart"
    if s.unknown or s.foreign:
        line += f" · **{s.unknown} unknown (unreachable or unreadable stamp), {s.foreign} refused**"
    lines.append(line)
    return lines + _review_notes(diff, s)


def _render(diff: FleetDiff, s: Summary, groups: list[Group], level: _Level) -> str:
    shown = groups if level.groups is None else groups[: level.groups]
    lines = _headline(diff, s)
    if groups:
        lines += ["", *_table(shown)]
    lines += _access_table(diff, shown)
    hidden = groups[len(shown) :]
    if hidden:
        agents = sum(g.size for g in hidden)
        lines += [
            "",
            f"*{plural(len(hidden), 'more group')} ({plural(agents, 'agent')}) not shown:"
            f" the comment must stay under {GITHUB_LIMIT:,} characters."
            " Run `reconcile diff --format text` for all.*",
        ]
    if level.details:
        sections = (
            ("Cost-impacting changes", [g for g in shown if g.first.rollout and g.cost_impacting]),
            ("Other changes", [g for g in shown if g.first.rollout and not g.cost_impacting]),
            (
                "Access, no rollout",
                [
                    g
                    for g in shown
                    if not g.first.rollout and g.access and g.status not in PROBLEM_STATUSES
                ],
            ),
            (
                "Settings, no rollout",
                [
                    g
                    for g in shown
                    if not g.first.rollout and not g.access and g.status not in PROBLEM_STATUSES
                ],
            ),
            ("Not compared", [g for g in shown if g.status in PROBLEM_STATUSES]),
        )
        for title, members in sections:
            if members:
                lines += ["", f"#### {title}", ""]
                for g in members:
                    lines += _details(g, level)
    if diff.fleet_settings:
        lines += ["", "#### Fleet settings (fleet.yaml, no rollout)", ""]
        lines += ["| field | change | old | new |", "|---|---|---|---|"]
        for c in diff.fleet_settings:
            old = code(show(c.old, 80)) if c.kind != "added" else ""
            new = code(show(c.new, 80)) if c.kind != "removed" else ""
            lines.append(f"| {code(c.dotted)} | {c.kind} | {old} | {new} |")
    if diff.alerts:
        lines += ["", "#### Alerts (Prometheus rules, no agent rollout)", ""]
        lines += ["| alert | change | compiled expression |", "|---|---|---|"]
        lines += [_alert_row(c) for c in diff.alerts]
    if diff.secret_files:
        lines += ["", "#### Secrets (encrypted files in `secrets/`, values never shown)", ""]
        lines += [f"- {html.escape(secret_file_text(c), quote=False)}" for c in diff.secret_files]
    lines += ["", *_elision_notes(groups, shown, level)]
    lines.append(
        "<sub>Secrets show only as `{secret: NAME}` references and keyed fingerprints,"
        " never as values. Generated by `reconcile diff`.</sub>"
    )
    return "\n".join(lines) + "\n"


def _alert_row(c: AlertChange) -> str:
    where = f" ({code(c.file)})" if c.file else ""
    also = f"; also {', '.join(c.fields)}" if c.fields else ""
    if c.kind is ChangeKind.CHANGED and c.old_expr != c.new_expr:
        expr = f"{code(c.old_expr or '')} → {code(c.new_expr or '')}"
    else:
        expr = code(c.new_expr or c.old_expr or "")
    return f"| {code(c.name)}{where} | {c.kind}{also} | {expr} |"


def _elision_notes(groups: list[Group], shown: list[Group], level: _Level) -> list[str]:
    notes: list[str] = []
    if not level.details and shown:
        notes.append(
            f"*Per-group details of {len(shown)} groups were left out to stay under"
            f" {GITHUB_LIMIT:,} characters.*"
        )
    elif level.names is not None:
        cut = sum(
            max(0, g.size - level.names)
            for g in shown
            if g.size > 1 and g.status not in PROBLEM_STATUSES
        )
        if cut:
            notes.append(
                f"*Agent lists were cut to {level.names} names per group ({cut} names elided)"
                f" to stay under {GITHUB_LIMIT:,} characters.*"
            )
    return [*notes, ""] if notes else []


def render_markdown(diff: FleetDiff, *, budget: int = DEFAULT_BUDGET) -> str:
    """The PR comment, shrunk step by step until it fits in `budget` characters."""
    s = summarise(diff)
    groups = group_agents(diff.agents)
    rows = [len(_row(g)) + 1 for g in groups]
    if sum(rows) < budget:  # else even the bare table cannot fit: skip to cutting it
        for level in (_Level(), _Level(names=_CUT_NAMES), _Level(names=0, details=False)):
            text = _render(diff, s, groups, level)
            if len(text) <= budget:
                return text
    # Keep the first groups whose rows fit beside the rest of the comment.
    room = budget - len(_render(diff, s, groups, _Level(names=0, details=False, groups=0)))
    shown = 0
    while shown < len(groups) and rows[shown] <= room:
        room -= rows[shown]
        shown += 1
    text = _render(diff, s, groups, _Level(names=0, details=False, groups=shown))
    while len(text) > budget and shown > 0:  # the elision note's numbers got shorter or longer
        shown -= 1
        text = _render(diff, s, groups, _Level(names=0, details=False, groups=shown))
    return text
