"""How the driver tells the world what it is doing: a `Reporter` takes notes, one kind at a time.

A note is a kind (a short name from `NOTE_KINDS`) and plain JSON fields; the
driver never formats text for a terminal. The CLI implements the protocol
twice: rich progress on stderr, or one JSON object per line on stdout
(`--format json`, for CI logs). Notes never hold secret values: only names,
shas, verdicts and the messages of box operations (which name paths, not values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]

NOTE_KINDS: Final = (
    "rollout.started",  # rollout_id, plan_id, revision, waves, boxes
    "preflight.passed",
    "preflight.failed",  # reason
    "wave.started",  # wave, agents
    "box.applied",  # agent, wave
    "box.failed",  # agent, wave, step, reason
    "watchdog.passed",  # agent
    "watchdog.failed",  # agent, verdict, reason
    "soak.tick",  # wave, remaining_s
    "soak.problem",  # agent, verdict, reason
    "gates.passed",  # wave, figures (each: gate, outcome, canary, baseline, threshold, samples..)
    "gates.failed",  # wave, figures
    "gates.waiting",  # wave, waited_s, limit_s, pending (inconclusive figures)
    "gates.retry",  # what, attempt, error (a metric source that did not answer)
    "rollback.started",  # trigger
    "box.restored",  # agent
    "box.restore_failed",  # agent, reason
    "box.moved",  # agent, old, new, removed (the old path's files, after a done move)
    "incident.written",  # markdown, json
    "rollout.finished",  # outcome, exit_code, left_behind
    "warning",  # message
)


class Reporter(Protocol):
    """Receives the driver's progress notes."""

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        """One thing happened; `kind` is one of NOTE_KINDS."""
        ...


class Recorder:
    """A Reporter that keeps every note (tests, and the incident report's timeline)."""

    __slots__ = ("notes",)

    def __init__(self) -> None:
        self.notes: list[tuple[str, dict[str, JsonValue]]] = []

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        self.notes.append((kind, dict(fields)))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.notes]


class Fanout:
    """A Reporter that passes every note to several others."""

    __slots__ = ("_to",)

    def __init__(self, *to: Reporter) -> None:
        self._to = to

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        for r in self._to:
            r.note(kind, fields)
