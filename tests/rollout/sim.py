"""A scripted, synchronous stand-in for the driver: runs the machine's commands against a script.

Each command is answered with the events a real driver would report, in
first-in first-out order, so a run is deterministic. Soak advances a
FakeClock. `interrupt_after` injects an Interrupted after that many events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.plan import Plan
from reconciler.rollout import (
    ApplyBox,
    ApplyStep,
    BoxApplied,
    BoxFailed,
    BoxRestored,
    BoxRestoreFailed,
    Command,
    Event,
    Finish,
    GateFigure,
    GatesFailed,
    GatesPassed,
    Interrupted,
    Preflight,
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
    step,
)
from reconciler.testing.clock import FakeClock


@dataclass
class Script:
    """How the simulated fleet behaves."""

    fail_apply: Mapping[str, ApplyStep] = field(default_factory=dict)
    fail_watch: Mapping[str, Verdict] = field(default_factory=dict)
    fail_restore: frozenset[str] = frozenset()
    fail_gates_wave: int | None = None
    interrupt_after: int | None = None


@dataclass
class Run:
    """What happened: the final state, every event fed, every command issued."""

    state: Rollout
    events: list[Event]
    commands: list[Command]
    clock: FakeClock

    def of_type(self, kind: type[Command]) -> list[Command]:
        return [c for c in self.commands if isinstance(c, kind)]

    @property
    def finish(self) -> Finish:
        done = [c for c in self.commands if isinstance(c, Finish)]
        assert len(done) == 1, done
        return done[0]


def answer(cmd: Command, script: Script, clock: FakeClock) -> list[Event]:
    """The events a driver would report for one command."""
    match cmd:
        case Preflight():
            return [PreflightPassed()]
        case ApplyBox(agent=agent):
            if agent in script.fail_apply:
                return [BoxFailed(agent, script.fail_apply[agent], "exit status 1")]
            return [BoxApplied(agent)]
        case Watch(agents=agents):
            return [
                WatchdogFailed(a, script.fail_watch[a], "scripted")
                if a in script.fail_watch
                else WatchdogPassed(a)
                for a in agents
            ]
        case Soak(wave=wave, seconds=seconds):
            clock.advance(seconds)
            return [SoakOver(wave)]
        case RunGates(wave=wave):
            if wave == script.fail_gates_wave:
                return [GatesFailed(wave, (GateFigure("task-errors", False, "9% > 5%"),))]
            return [GatesPassed(wave, (GateFigure("task-errors", True, "1% <= 5%"),))]
        case RestoreBox(agent=agent):
            if agent in script.fail_restore:
                return [BoxRestoreFailed(agent, "reload exit 1")]
            return [BoxRestored(agent)]
    return []


def run(plan: Plan, script: Script | None = None, *, parallel: int = 3) -> Run:
    """Drive a rollout of `plan` to its end against `script`."""
    script = script or Script()
    clock = FakeClock()
    state = Rollout.start(plan)
    queue: deque[Event] = deque([Started(parallel)])
    events: list[Event] = []
    commands: list[Command] = []
    while queue:
        ev = queue.popleft()
        events.append(ev)
        state, cmds = step(state, ev)
        commands.extend(cmds)
        for cmd in cmds:
            queue.extend(answer(cmd, script, clock))
        if script.interrupt_after is not None and len(events) == script.interrupt_after:
            queue.appendleft(Interrupted())
    return Run(state, events, commands, clock)
