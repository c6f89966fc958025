"""Journal records of events and commands: exact round trips, refusals of anything not plain."""

from __future__ import annotations

import json

import pytest
from plan.builders import fleet_changes, plan_of, sha

from reconciler.plan import Activation, Delivery
from reconciler.rollout import (
    ApplyBox,
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    CancelChecks,
    Finish,
    GateFigure,
    GatesFailed,
    GatesPassed,
    Interrupted,
    Outcome,
    Preflight,
    PreflightFailed,
    PreflightPassed,
    RestoreBox,
    Rollout,
    RunGates,
    Soak,
    SoakOver,
    Started,
    Verdict,
    Watch,
    WatchdogFailed,
    WatchdogPassed,
    WriteIncident,
    step,
)
from reconciler.rollout.commands import COMMAND_TYPES
from reconciler.rollout.events import EVENT_TYPES
from reconciler.rollout.records import (
    RecordRefused,
    check_plain,
    command_from_record,
    event_from_record,
    to_record,
)

FIG = (GateFigure("latency", False, "p95 9.1s > 1.5 x 2.0s"), GateFigure("cost", True, "ok"))
EVENTS = [
    Started(8),
    PreflightPassed(),
    PreflightFailed("agent-1: host key mismatch"),
    BoxApplied("agent-1"),
    BoxFailed("agent-1", ApplyStep.STAMP_CHECK, "stamp moved"),
    WatchdogPassed("agent-1"),
    WatchdogFailed("agent-1", Verdict.DEAD, "unreachable"),
    SoakOver(2),
    GatesPassed(2, (FIG[1],)),
    GatesFailed(2, FIG),
    BoxRestored("agent-1"),
    BoxRestoreFailed("agent-1", "history file missing"),
    Interrupted(),
]
COMMANDS = [
    Preflight(),
    ApplyBox("a", 1, sha("t"), None, Delivery.RESTORE, Activation.RESTART, sha("s"), "rev-1"),
    Watch(1, ("a", "b")),
    Soak(1, 600.0),
    RunGates(1, ("a",), ("latency", "cost")),
    CancelChecks(),
    RestoreBox("a", sha("p"), Activation.RELOAD),
    WriteIncident("gates failed", ("a",), ("a", "b"), ()),
    Finish(Outcome.ROLLBACK_FAILED, ()),
]


def test_cases_cover_every_type() -> None:
    """The round-trip lists hold one of every event and command type."""
    assert {type(e) for e in EVENTS} == set(EVENT_TYPES)
    assert {type(c) for c in COMMANDS} == set(COMMAND_TYPES)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_json(event: object) -> None:
    """An event written as JSON text and read back is equal to itself."""
    record = json.loads(json.dumps(to_record(event)))  # type: ignore[arg-type]
    assert record["type"] == type(event).__name__
    assert event_from_record(record) == event


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_command_round_trips_through_json(command: object) -> None:
    """A command written as JSON text and read back is equal to itself."""
    record = json.loads(json.dumps(to_record(command)))  # type: ignore[arg-type]
    assert command_from_record(record) == command


def test_unknown_or_malformed_records_are_refused() -> None:
    """A record of an unknown type, or whose fields break the event's rules, is refused."""
    with pytest.raises(ValueError, match="not an event record: type 'Exploded'"):
        event_from_record({"type": "Exploded"})
    with pytest.raises(ValueError, match="bad WatchdogFailed record"):
        event_from_record({"type": "WatchdogFailed", "agent": "a", "verdict": "ok", "reason": "r"})
    with pytest.raises(ValueError, match="bad BoxFailed record"):
        event_from_record({"type": "BoxFailed", "agent": "a", "step": "teleport", "reason": "r"})
    with pytest.raises(ValueError, match="not a command record"):
        command_from_record({"type": "BoxApplied", "agent": "a"})


def test_only_plain_data_passes() -> None:
    """Plain JSON data passes; objects anywhere inside are refused, naming the path."""
    check_plain({"a": [1, 2.5, None, True, {"b": "c"}]})
    with pytest.raises(RecordRefused, match=r"record\.a\[1\]\.b: a bytes"):
        check_plain({"a": [1, {"b": b"raw"}]})
    with pytest.raises(RecordRefused, match="keys must be str"):
        check_plain({1: "x"})


def test_journaled_pre_shas_drive_the_restores() -> None:
    """A rollout started with journaled pre-change shas restores to those, not the plan's."""
    plan = plan_of(fleet_changes(3))
    canary = plan.waves[0].agents[0]
    state = Rollout.start(plan, {canary: sha("read-just-before-write")})
    for ev in (Started(), PreflightPassed(), BoxApplied(canary)):
        state, _ = step(state, ev)
    state, cmds = step(state, Interrupted())
    assert RestoreBox(canary, sha("read-just-before-write"), Activation.RELOAD) in cmds
    with pytest.raises(ValueError, match="not in the plan: stranger"):
        Rollout.start(plan, {"stranger": None})
