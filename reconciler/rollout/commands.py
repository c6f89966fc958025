"""Commands: what the machine asks the driver to do next (imperative, frozen, plain values).

The machine never runs a command; the driver does, journals an intent before
and a result after, and reports back with events. Box operations (ApplyBox,
RestoreBox) are throttled by the machine itself: never more than the rollout's
`parallel` in flight, so a driver can simply start every command it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.plan.model import Activation, Delivery
from reconciler.rollout.phases import Outcome


class Command:
    """Base of every command; not used directly."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Preflight(Command):
    """Check every box of the plan: reachable, host key, stamp unmoved (plan id), leasable."""


@dataclass(frozen=True, slots=True)
class ApplyBox(Command):
    """Lease the box, compare its stamp, deliver the target file, activate, verify, stamp.

    Report BoxApplied, or BoxFailed naming the step that failed.
    """

    agent: str
    wave: int
    target_sha: str
    pre_sha: str | None
    delivery: Delivery
    activation: Activation
    stamp_sha: str | None = None  # the stamp the plan saw (compare-and-swap); None: unmanaged
    stamp_revision: str | None = None


@dataclass(frozen=True, slots=True)
class Watch(Command):
    """Run the watchdog on these boxes; report WatchdogPassed or WatchdogFailed for each."""

    wave: int
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Soak(Command):
    """Let the wave run for `seconds` by the clock; report SoakOver."""

    wave: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RunGates(Command):
    """Judge the wave's healthy boxes by the gates; report GatesPassed or GatesFailed."""

    wave: int
    agents: tuple[str, ...]
    gates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelChecks(Command):
    """Stop any running watch, soak or gates: a rollback began. Box operations run on."""


@dataclass(frozen=True, slots=True)
class RestoreBox(Command):
    """Put the box back on `pre_sha` (None: it had no config file), activate, verify, stamp.

    Report BoxRestored or BoxRestoreFailed.
    """

    agent: str
    pre_sha: str | None
    activation: Activation


@dataclass(frozen=True, slots=True)
class WriteIncident(Command):
    """Write the incident report: why, which boxes failed, which were restored or not."""

    trigger: str
    failed: tuple[str, ...]
    restored: tuple[str, ...]
    restore_failed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finish(Command):
    """Release the lock, close the journal entry with the outcome, exit with its code.

    `left_behind`: boxes that failed within the budget and run their old config.
    """

    outcome: Outcome
    left_behind: tuple[str, ...] = ()


COMMAND_TYPES: tuple[type[Command], ...] = (
    Preflight,
    ApplyBox,
    Watch,
    Soak,
    RunGates,
    CancelChecks,
    RestoreBox,
    WriteIncident,
    Finish,
)
