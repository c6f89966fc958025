"""The plan id, and the check that a saved plan still matches the boxes.

The id is a sha256 over the target revision and, per changing agent in name
order, what the box *is*: its stamp's config sha and revision, the sha of its
file, and the sha it is to get. Never health, which changes every second. A
saved plan whose boxes moved (another apply, a hand edit, a new agent) is
refused, naming the boxes, before anything is touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from reconciler.plan.errors import PlanError
from reconciler.plan.model import Change, Plan

Fingerprint = tuple[str | None, ...]


def fingerprint(change: Change) -> Fingerprint:
    """What the plan id covers of one agent: name, stamp sha and revision, file sha, target
    sha (and a mark when its secrets file changes, and the old and new path of a move)."""
    out: Fingerprint = (
        change.agent,
        change.stamp_sha,
        change.stamp_revision,
        change.live_sha,
        change.desired_sha,
    )
    if change.secrets:
        out = (*out, "secrets")
    if change.moved_from is not None and change.moved_from != change.config_path:
        out = (*out, "moved", change.moved_from, change.config_path)
    return out


def plan_id(target_revision: str, changes: Iterable[Change]) -> str:
    """sha256 (hex) of the target revision and the changing boxes' fingerprints, name order."""
    prints = sorted(fingerprint(c) for c in changes)
    doc = json.dumps([target_revision, prints], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def _names(agents: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(agents[:limit])
    return shown if len(agents) <= limit else f"{shown} and {len(agents) - limit} more"


def verify_plan(plan: Plan, current: Sequence[Change]) -> None:
    """Refuse a plan whose boxes moved since it was made.

    `current` is the planning input read just now, for the plan's target revision.

    Raises:
        PlanError: naming the boxes that moved, appeared or no longer change.
    """
    if plan_id(plan.target_revision, current) == plan.plan_id:
        return
    then = {b.agent: fingerprint(b.as_change()) for b in plan.boxes}
    now = {c.agent: fingerprint(c) for c in current}
    moved = sorted(a for a in then.keys() & now.keys() if then[a] != now[a])
    new = sorted(now.keys() - then.keys())
    gone = sorted(then.keys() - now.keys())
    parts = []
    if moved:
        parts.append(f"changed since the plan: {_names(moved)}")
    if new:
        parts.append(f"now changing but not in the plan: {_names(new)}")
    if gone:
        parts.append(f"in the plan but no longer changing: {_names(gone)}")
    detail = "; ".join(parts) or "the plan file does not match its own boxes"
    raise PlanError(
        f"plan {plan.plan_id[:12]} is stale ({detail}); "
        "make a new plan with `reconcile apply --dry-run` and review it",
        agents=[*moved, *new, *gone],
    )
