"""What one rollout run saw, for its incident report and its journal summary (pure data).

The driver fills it in as it goes (clock readings, the notes it made, what it put
back); reports and history read it, never the driver itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reconciler.plan.model import Plan
from reconciler.rollout.reporter import JsonValue
from reconciler.rollout.state import Rollout

TimelineEntry = tuple[datetime, str, dict[str, JsonValue]]


@dataclass
class RunRecord:
    """One run of a plan: identity, timeline and headline clock readings."""

    plan: Plan
    rollout_id: str
    fleet_id: str
    revision: str
    state: Rollout
    started_at: datetime
    timeline: list[TimelineEntry] = field(default_factory=list)
    wave_started_at: dict[int, datetime] = field(default_factory=dict)
    detected_at: datetime | None = None  # the rollback began
    finished_at: datetime | None = None
    restored_shas: dict[str, str | None] = field(default_factory=dict)
    committed_at: float | None = None  # a revert: when its commit was made (epoch seconds)
