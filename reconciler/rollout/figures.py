"""The headline figures of one rollout, for the journal's summary and `reconcile history`.

Durations come from the driver's clock readings: the whole run, time to detect
(the failing wave's start to the rollback's start) and time to roll back (the
rollback's start to the end), the waves reached, and for a revert the time from
the revert commit to the fleet restored. Plain numbers only, journal-safe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconciler.plan.model import Delivery
from reconciler.rollout.runrecord import RunRecord


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    """`end - start` in seconds (3 decimals), or None when either is unknown."""
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def history_figures(d: RunRecord) -> dict[str, Any]:
    """Duration, waves reached, time to detect and to roll back, restores from history."""
    state = d.state
    failing = min(state.wave, len(state.spec.waves) - 1) if state.spec.waves else 0
    restores = sum(1 for b in d.plan.boxes if b.delivery is Delivery.RESTORE)
    committed = d.committed_at
    return {
        "duration_s": seconds(d.started_at, d.finished_at),
        "waves_total": len(d.plan.waves),
        "waves_reached": len(d.wave_started_at),
        "boxes": len(d.plan.boxes),
        "restored_from_history": restores,
        "time_to_detect_s": (
            seconds(d.wave_started_at.get(failing), d.detected_at) if d.detected_at else None
        ),
        "time_to_roll_back_s": seconds(d.detected_at, d.finished_at) if d.detected_at else None,
        "time_from_commit_s": (
            round(d.finished_at.timestamp() - committed, 3)
            if isinstance(committed, float) and d.finished_at is not None
            else None
        ),
    }
