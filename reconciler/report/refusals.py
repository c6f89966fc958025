"""Boxes a command cannot use, grouped by cause, each cause with its own fix. Pure.

"12 boxes: host key unknown ..." once, not the same error twelve times; and the fix
that cause needs: a missing SSH key or an unknown host key is not helped by leaving
the boxes out (`--allow-unreachable` is offered only where it is the way on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NAMES_SHOWN = 10  # agents named per cause (the rest counted)
LEAVE_OUT = "or pass --allow-unreachable to leave them out of this rollout"


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason boxes are refused: how to spot it in an error, and what to do."""

    label: str
    pattern: re.Pattern[str]
    fix: str


CAUSES: tuple[Cause, ...] = (
    Cause("SSH key missing or unreadable", re.compile(r"cannot load private key"),
          "fix fleet.yaml connection.key (the file must exist and be readable by you); "
          "every box needs it, so leaving boxes out does not help"),
    Cause("host key unknown", re.compile(r"host key unknown"),
          "check each box's host key fingerprint out of band, then add it to known_hosts "
          "(the ssh-keyscan command is in the error)"),
    Cause("host key changed", re.compile(r"host key changed"),
          "find out why the key changed (a re-keyed box, or someone in between) before "
          "replacing its known_hosts line (the commands are in the error)"),
    Cause("host key revoked", re.compile(r"host key revoked"),
          "re-key the box; do not trust the revoked key again"),
    Cause("login refused", re.compile(r"refused our key|login refused"),
          "install the fleet's public key (connection.key) for the login user on these boxes"),
    Cause("unreachable", re.compile(
        r"cannot reach|no SSH answer|dropped the connection|ended the handshake|connection "
        r"lost|timed out|did not finish within|refused|unreachable", re.I),
          f"start or repair the boxes (or their network), {LEAVE_OUT}"),
    Cause("stamp unreadable", re.compile(r"stamp", re.I),
          f"repair or remove the box's stamp file (`reconcile status` names it), {LEAVE_OUT}"),
)  # fmt: skip
OTHER = Cause("other", re.compile(""), f"fix them, {LEAVE_OUT}")


def cause_of(reason: str) -> Cause:
    """The first cause whose pattern the reason matches (OTHER when none does)."""
    return next((c for c in CAUSES if c.pattern.search(reason)), OTHER)


def group_refusals(refused: Mapping[str, str]) -> list[str]:
    """Lines: per cause, how many boxes and which, one error verbatim, and the fix.

    A cause of one box shows that box's whole error; a cause of many shows the first
    one's as an example (the others differ only in host, port and key).
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for agent, reason in sorted(refused.items()):
        groups.setdefault(cause_of(reason).label, []).append((agent, reason))
    by_label = {c.label: c for c in (*CAUSES, OTHER)}
    lines: list[str] = []
    for label, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        names = [a for a, _ in members]
        shown = ", ".join(names[:NAMES_SHOWN])
        more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        count = "1 box" if len(names) == 1 else f"{len(names)} boxes"
        lines.append(f"{count}: {label}: {shown}{more}")
        agent, reason = members[0]
        text = reason.removeprefix(f"{agent}: ")
        lines.append(f"  {agent}: {text}" if len(names) == 1 else f"  e.g. {agent}: {text}")
        lines.append(f"  fix: {by_label[label].fix}")
    return lines
