"""How diff values read in reports: short, one line, secrets as references only.

Shared by the text and markdown reports. A `{secret: NAME}` reads as
`{secret: NAME}`; a multi-line string (a prompt) as its first line and a line
count; anything long is cut with an ellipsis. Values reach here already
redacted by the core (diff/agent.py); nothing here can reveal more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import JsonValue

from reconciler.diff.cost import PRICES_HOME, total
from reconciler.diff.group import Group
from reconciler.diff.model import (
    AgentDiff,
    AgentStatus,
    AlertChange,
    ChangeKind,
    CostTotal,
    FieldChange,
    FleetDiff,
    SecretFileChange,
    SecretsChange,
    SecretValueCheck,
)

ARROW = "→"


def show(value: JsonValue, limit: int = 60) -> str:
    """One line for a value, at most `limit` characters."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secret"), str):
        text = f"{{secret: {value['secret']}}}"
    elif isinstance(value, str):
        lines = value.split("\n")
        if value.endswith("\n"):
            lines = lines[:-1]
        if len(lines) == 1 and value.endswith("\n"):  # one line of text: the newline is noise
            value = lines[0]
        text = value if value and value.strip() == value else json.dumps(value)
        if len(lines) > 1:
            text = f"{lines[0].strip()}… ({len(lines)} lines)"
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_text(c: FieldChange, limit: int = 60) -> str:
    """`model claude-haiku-4-5 → claude-sonnet-4-5`, `+ tags [...]`, `- debug (removed)`."""
    if c.kind is ChangeKind.ADDED:
        return f"{c.dotted} added: {show(c.new, limit)}"
    if c.kind is ChangeKind.REMOVED:
        return f"{c.dotted} removed (was {show(c.old, limit)})"
    return f"{c.dotted} {show(c.old, limit)} {ARROW} {show(c.new, limit)}"


def changes_line(changes: Sequence[FieldChange], most: int = 2, limit: int = 40) -> str:
    """The first few changes of a set on one line, and how many more there are."""
    parts = [change_text(c, limit) for c in changes[:most]]
    if len(changes) > most:
        parts.append(f"+{len(changes) - most} more")
    return "; ".join(parts)


def flags(c: FieldChange) -> list[str]:
    """The flag words of a change: cost, restart, secret, access, moved (to a new path)."""
    out = []
    if c.cost_impacting:
        out.append("cost")
    if c.restart_required:
        out.append("restart")
    if c.secret:
        out.append("secret")
    if c.access:
        out.append("access")
    if c.moves:
        out.append("moved")
    return out


def where_text(c: FieldChange) -> str:
    """Provenance of a change: 'file:line', or 'file:line; was file:line' when the old differs."""
    if c.old_source and c.old_source != c.source:
        return f"{c.source}; was {c.old_source}" if c.source else f"was {c.old_source}"
    return c.source or ""


def short_fingerprint(fp: str | None) -> str:
    """A fingerprint cut to 8 hex digits (it is a keyed HMAC: safe, and enough to compare)."""
    if fp is None:
        return "none"
    scheme, _, digest = fp.partition(":")
    return f"{scheme}:{digest[:8]}" if digest else fp[:8]


def secrets_text(s: SecretsChange) -> str:
    """'secrets file changed (hmac:1a2b3c4d → hmac:5e6f7a8b)'; never a value."""
    if s.check == "missing":
        return f"secrets file new (wanted {short_fingerprint(s.new)})"
    return f"secrets file {s.check} ({short_fingerprint(s.old)} {ARROW} {short_fingerprint(s.new)})"


def money(x: float | None) -> str:
    """'+$12.30/day', '-$4.00/day', or 'no estimate'."""
    if x is None:
        return "no estimate"
    return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}/day"


def status_word(g: Group) -> str:
    """A group's status as reports name it; with no payload change: settings, secrets, rewrite."""
    a = g.first
    if a.status != "unchanged":
        return str(a.status)
    if not a.rollout:
        return "access" if a.access else "settings"
    if a.moved:
        return "moved"
    return "secrets" if a.secrets is not None and a.secrets.changed else "rewrite"


def group_total(g: Group) -> CostTotal | None:
    """The summed dollar figures of a group's agents (None when none has one)."""
    return total(
        (a.cost for a in g.agents), cost_impacting=sum(a.cost is not None for a in g.agents)
    )


def usd(x: float) -> str:
    """'$1,234.50'."""
    return f"{'-' if x < 0 else ''}${abs(x):,.2f}"


def signed(x: float) -> str:
    """'+$12.30', '-$4.00'."""
    return f"{'+' if x >= 0 else '-'}${abs(x):,.2f}"


def total_text(t: CostTotal) -> str:
    """'$725.76/day → $907.20/day (+$181.44/day); $22,075.20/month → $27,594.00/month
    (+$5,518.80/month)'."""
    return (
        f"{usd(t.now_per_day)}/day {ARROW} {usd(t.new_per_day)}/day"
        f" ({signed(t.delta_per_day)}/day); {usd(t.now_per_month)}/month {ARROW}"
        f" {usd(t.new_per_month)}/month ({signed(t.delta_per_month)}/month)"
    )


def basis_text(t: CostTotal) -> str:
    """'traffic: live metrics of each box (scrape), 5 s window; example prices dated ...'."""
    parts = []
    if t.sources:
        parts.append(f"traffic: {'; '.join(t.sources)}")
    if t.prices:
        parts.append(t.prices)
    if t.without:
        parts.append(f"{plural(t.without, 'agent')} without a figure not included")
    return "; ".join(parts)


def missing_text(models: Sequence[str]) -> str:
    """'model claude-x is not in the price table: add it to fleet.yaml `prices.models`'."""
    names = ", ".join(models)
    verb = "is" if len(models) == 1 else "are"
    return (
        f"{plural(len(models), 'model')} {names} {verb} not in the price table:"
        f" add to {PRICES_HOME}"
    )


def group_cost(g: Group) -> str:
    """A group's cost estimate in words: the figures, and how they were made or why none."""
    costs = [a.cost for a in g.agents if a.cost is not None]
    if not costs:
        return ""
    t = group_total(g)
    notes = sorted({c.note for c in costs if c.delta_per_day is None})
    if t is None:
        return f"no estimate ({'; '.join(notes)})"
    how = costs[0].note if g.size == 1 else f"summed over {plural(t.estimated, 'agent')}"
    caveats = sorted({c.caveat for c in costs if c.caveat and c.delta_per_day is not None})
    if caveats and g.size > 1:
        how += f"; {'; '.join(caveats)}"
    text = f"{total_text(t)} ({how}; {basis_text(t)})"
    if notes:
        text += f"; no figure for the rest ({'; '.join(notes)})"
    return text


def plural(n: int, word: str) -> str:
    """'1 agent', '2 agents'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def what_line(a: AgentDiff) -> str:
    """One line saying what changes for an agent (or a group, by its first agent)."""
    if a.status in (AgentStatus.ADDED, AgentStatus.REMOVED) and a.reason is None:
        who = "new agent" if a.status is AgentStatus.ADDED else "agent removed"
        return f"{who}: {plural(len(a.changes), 'field')}"
    text = changes_line((*a.changes, *a.access)) or changes_line(a.settings)
    if not text and a.secrets is not None:
        text = secrets_text(a.secrets)
    if not text and a.format_only:
        text = "bytes only (key order or style)"
    return text or a.reason or str(a.status)


def cost_cell(g: Group) -> str:
    """A group's cost in a few words: '+$12.00/day (+$365.00/month)', 'x3.00 per token'."""
    costs = [a.cost for a in g.agents if a.cost is not None]
    if not costs:
        return ""
    t = group_total(g)
    if t is not None:
        more = f", {t.without} without" if t.without else ""
        return f"{signed(t.delta_per_day)}/day ({signed(t.delta_per_month)}/month{more})"
    ratio = costs[0].ratio
    return f"x{ratio:.2f} per token" if ratio is not None else "no estimate"


def delta_words(diff: FleetDiff, delta: float | None) -> str:
    """The headline's cost change: '+$3.00/day', or the part with figures, or 'no estimate'."""
    t = diff.cost
    if delta is not None or t is None:
        return money(delta)
    return (
        f"{money(t.delta_per_day)} for the {plural(t.estimated, 'agent')} with a figure,"
        f" {t.without} without"
    )


def fleet_cost_lines(diff: FleetDiff) -> list[str]:
    """The whole diff's estimate: old → new and delta per day and month, and its basis."""
    lines = []
    t = diff.cost
    if t is not None:
        lines.append(f"Estimated cost: {total_text(t)}.")
        lines.append(f"Basis: {basis_text(t)}.")
    missing = sorted({m for a in diff.agents if a.cost for m in a.cost.missing_models})
    if missing:
        lines.append(f"Not priced: {missing_text(missing)}.")
    return lines


def alert_lines(c: AlertChange) -> list[str]:
    """An alert change as text: `+ Name (file)` and its PromQL, or old -> new."""
    mark = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.CHANGED: "~"}[c.kind]
    where = f"  ({c.file})" if c.file else ""
    also = f"  [{', '.join(c.fields)}]" if c.fields else ""
    lines = [f"{mark} {c.name}{where}{also}"]
    if c.kind is ChangeKind.CHANGED and c.old_expr != c.new_expr:
        lines += [f"    was: {c.old_expr}", f"    now: {c.new_expr}"]
    else:
        lines.append(f"    {c.new_expr if c.new_expr is not None else c.old_expr}")
    return lines


def secret_file_text(c: SecretFileChange) -> str:
    """One encrypted secret file that changed, in words (never a value)."""
    who = plural(c.agents, "agent")
    if c.value is SecretValueCheck.SAME:
        what = "re-encrypted, same value: nothing changes on the boxes"
    elif c.kind is ChangeKind.REMOVED:
        what = f"removed; {who} still refer to it" if c.agents else "removed; no agent refers to it"
    elif c.value is SecretValueCheck.CHANGED:
        what = (
            f"new value: apply writes it to the secrets file of {who} (a rollout)"
            if c.agents
            else "new value; no agent refers to it yet"
        )
    else:
        why = f" ({c.note})" if c.note else ""
        what = (
            f"value not compared{why}: apply writes whatever it holds to the secrets file of {who}"
        )
    return f"{c.kind} {c.path}: {what}"


def secret_files_line(diff: FleetDiff) -> str | None:
    """The headline's line on encrypted secret files, when any may change a value."""
    moving = [c for c in diff.secret_files if c.value is not SecretValueCheck.SAME]
    if not moving:
        return None
    names = ", ".join(c.name for c in moving)
    return (
        f"Secrets: {plural(len(moving), 'encrypted secret file')} changed ({names}): merging"
        " rolls new values out to the agents that refer to them; values are never shown."
    )
