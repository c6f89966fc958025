"""Rollout: the pure core of applying a plan in waves (machine, watchdog, budget).

`step(state, event) -> (state, commands)` decides; a driver (rollout/driver.py)
runs the commands over the transports and reports events back. The clock
(rollout/clock.py) and the driver are not imported here: this package's
namespace stays free of I/O.
"""

from reconciler.rollout.budget import Budget, Failure
from reconciler.rollout.commands import (
    COMMAND_TYPES,
    ApplyBox,
    CancelChecks,
    Command,
    Finish,
    Preflight,
    RestoreBox,
    RunGates,
    Soak,
    Watch,
    WriteIncident,
)
from reconciler.rollout.events import (
    EVENT_TYPES,
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    Event,
    GateFigure,
    GatesFailed,
    GatesPassed,
    Interrupted,
    PreflightFailed,
    PreflightPassed,
    SoakOver,
    Started,
    WatchdogFailed,
    WatchdogPassed,
)
from reconciler.rollout.machine import (
    EVENT_TRANSITIONS,
    STATE_TRANSITIONS,
    IllegalTransition,
    MachineError,
    UnexpectedEvent,
    fold,
    outstanding,
    step,
)
from reconciler.rollout.phases import Outcome, Phase
from reconciler.rollout.state import BoxStatus, Rollout, Spec
from reconciler.rollout.watchdog import Judgement, Limits, Sample, Verdict, judge

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TRANSITIONS",
    "EVENT_TYPES",
    "STATE_TRANSITIONS",
    "ApplyBox",
    "ApplyStep",
    "BoxApplied",
    "BoxFailed",
    "BoxRestoreFailed",
    "BoxRestored",
    "BoxStatus",
    "Budget",
    "CancelChecks",
    "Command",
    "Event",
    "Failure",
    "Finish",
    "GateFigure",
    "GatesFailed",
    "GatesPassed",
    "IllegalTransition",
    "Interrupted",
    "Judgement",
    "Limits",
    "MachineError",
    "Outcome",
    "Phase",
    "Preflight",
    "PreflightFailed",
    "PreflightPassed",
    "RestoreBox",
    "Rollout",
    "RunGates",
    "Sample",
    "Soak",
    "SoakOver",
    "Spec",
    "Started",
    "UnexpectedEvent",
    "Verdict",
    "Watch",
    "WatchdogFailed",
    "WatchdogPassed",
    "WriteIncident",
    "fold",
    "judge",
    "outstanding",
    "step",
]
