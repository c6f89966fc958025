"""Boxes another run holds: apply reads every box's lease before its first write.

A run on another machine (a laptop beside CI) keeps its own lock, so the fleet lock
cannot see it; the boxes' leases can. Apply waits for such boxes (up to --wait-lock) or
refuses before any write, naming the holders: never half a rollout that stops at the
first box the other run holds. A lease whose holder is certainly dead (expired, its
process gone, its heartbeat stale) does not count: the run that takes the box breaks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from reconciler.engine.boxops import Lease
from reconciler.model.live import LiveBox
from reconciler.render.stamp import rfc3339


def held_by_others(live: Mapping[str, LiveBox], now: datetime) -> dict[str, Lease]:
    """Agent -> the live lease another run holds on its box."""
    held: dict[str, Lease] = {}
    for name, box in live.items():
        if box.lease_bytes is None:
            continue
        lease = Lease.parse(box.lease_bytes)
        if lease is not None and lease.dead(now) is None:
            held[name] = lease
    return held


def describe_held(held: Mapping[str, Lease], *, limit: int = 5) -> str:
    """'2 boxes held by rollout R (holder H, heartbeat T): a, b; ...' grouped by rollout."""
    by_run: dict[tuple[str, str], list[str]] = {}
    beats: dict[tuple[str, str], str] = {}
    for agent, lease in sorted(held.items()):
        key = (lease.rollout_id, lease.holder)
        by_run.setdefault(key, []).append(agent)
        beat = lease.heartbeat_at or lease.expires_at
        beats[key] = rfc3339(beat.astimezone(UTC))
    parts = []
    for (rollout, holder), agents in by_run.items():
        more = f" and {len(agents) - limit} more" if len(agents) > limit else ""
        shown = ", ".join(agents[:limit]) + more
        noun = "box" if len(agents) == 1 else "boxes"
        parts.append(
            f"{len(agents)} {noun} held by rollout {rollout} of {holder} "
            f"(last heartbeat {beats[(rollout, holder)]}): {shown}"
        )
    return "; ".join(parts)


def utcnow() -> datetime:
    return datetime.now(UTC)
