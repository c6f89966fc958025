"""The JSON documents a rollout writes for machines: its event lines and its incident report.

`apply`, `resume` and `rotate-secret --format json` print one `Event` per line on stdout:
an envelope whose `event` is the note's kind (`rollout.started`, `wave.started`,
`gates.failed`, ... : reconciler.rollout.reporter.NOTE_KINDS) and whose other keys are
that note's fields, plain JSON. `time` is optional: the envelope allows an emitter to
stamp it. An incident report (`incidents/<rollout>.json`) is an `Incident`, its
timeline the same notes with an `at` time. Both are described, not enforced, here: the
emitters build plain dicts; schemas/events.schema.json and schemas/incident.schema.json
come from these models (reconciler.devtools.schemas) and the journeys validate real
output against them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

KIND_PATTERN = r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*$"
EventKind = Annotated[str, Field(pattern=KIND_PATTERN, description="the note's kind")]


class Event(BaseModel):
    """One JSON line of `--format json` progress: the kind, and the note's fields beside it."""

    model_config = ConfigDict(extra="allow", title="Event")

    event: EventKind
    time: str | None = Field(
        default=None, description="RFC 3339 UTC, when the emitter stamps its lines"
    )


class TimelineEntry(BaseModel):
    """One note of an incident's timeline: when, what kind, and the note's fields."""

    model_config = ConfigDict(extra="allow")

    at: str = Field(description="RFC 3339 UTC, to the second")
    kind: EventKind


class FailedBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str
    what: str


class RestoredBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str
    to_sha: str | None


class Incident(BaseModel):
    """An incident report's JSON (`incidents/<rollout_id>.json`)."""

    model_config = ConfigDict(extra="forbid")

    incident_version: Literal[1]
    rollout_id: str
    fleet_id: str
    plan_id: str
    revision: str
    outcome: str
    trigger: str | None
    failing_wave: int = Field(ge=1)
    failing_wave_agents: list[str]
    failed: list[FailedBox]
    failed_checks: list[TimelineEntry]
    restored: list[RestoredBox]
    restore_failed: list[str]
    time_to_detect_s: float | None
    time_to_roll_back_s: float | None
    started_at: str
    timeline: list[TimelineEntry]
