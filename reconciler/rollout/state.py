"""The rollout's state: one immutable value, rebuilt from the plan and the recorded events.

`Spec` is what the plan fixes (waves, per-box actions, pre-change shas) and is
shared by every state of one rollout; `Rollout` adds what the events changed.
Nothing here decides anything: the transitions live in machine.py.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.plan.model import BoxStep, Plan, Wave
from reconciler.rollout.budget import Budget
from reconciler.rollout.phases import Outcome, Phase


class BoxStatus(enum.StrEnum):
    """Where one box stands in the rollout."""

    PENDING = "pending"
    APPLYING = "applying"
    APPLIED = "applied"
    HEALTHY = "healthy"
    FAILED = "failed"  # after a write began: must be restored
    FAILED_UNTOUCHED = "failed-untouched"  # before any write: nothing to restore
    RESTORING = "restoring"
    RESTORED = "restored"
    RESTORE_FAILED = "restore-failed"

    @property
    def restorable(self) -> bool:
        """The box may hold the new config and is not being (or been) restored."""
        return self in {BoxStatus.APPLIED, BoxStatus.HEALTHY, BoxStatus.FAILED}


@dataclass(frozen=True, slots=True)
class Spec:
    """What the plan fixes for the whole rollout."""

    plan_id: str
    waves: tuple[Wave, ...]
    steps: Mapping[str, BoxStep]
    pre_shas: Mapping[str, str | None]

    @classmethod
    def of(cls, plan: Plan, pre_shas: Mapping[str, str | None] | None = None) -> Spec:
        """The spec of `plan`; `pre_shas` (as journaled) override the plan's own."""
        given = dict(pre_shas or {})
        unknown = sorted(given.keys() - {b.agent for b in plan.boxes})
        if unknown:
            raise ValueError(f"pre-change shas for agents not in the plan: {', '.join(unknown)}")
        return cls(
            plan_id=plan.plan_id,
            waves=plan.waves,
            steps={b.agent: b for b in plan.boxes},
            pre_shas={b.agent: given.get(b.agent, b.pre_sha) for b in plan.boxes},
        )


@dataclass(frozen=True, slots=True)
class Rollout:
    """A rollout at one moment: a pure value; `step()` makes the next one."""

    spec: Spec
    budget: Budget
    phase: Phase = Phase.PLANNED
    parallel: int = 1
    wave: int = 0  # index of the current wave
    cursor: int = 0  # next agent of the current wave to apply
    boxes: Mapping[str, BoxStatus] = field(default_factory=dict)  # PENDING ones left out
    changed: tuple[str, ...] = ()  # boxes that may hold the new config, in the order touched
    busy: frozenset[str] = frozenset()  # box operations in flight (apply or restore)
    watching: frozenset[str] = frozenset()  # boxes whose watchdog verdict is awaited
    restore_queue: tuple[str, ...] = ()  # restores waiting for a free slot
    trigger: str | None = None  # why the rollout is rolling back (or aborted)
    # A failed gate or watchdog judged the change: its revision is blocked. A crash, a
    # signal, a lost lock or our own bug is no verdict: the revision may be tried again.
    verdict: bool = False

    @classmethod
    def start(cls, plan: Plan, pre_shas: Mapping[str, str | None] | None = None) -> Rollout:
        """The rollout of `plan` before anything happened (PLANNED)."""
        return cls(spec=Spec.of(plan, pre_shas), budget=Budget(plan.failure_budget))

    def status(self, agent: str) -> BoxStatus:
        return self.boxes.get(agent, BoxStatus.PENDING)

    def with_status(self, statuses: Mapping[str, BoxStatus]) -> dict[str, BoxStatus]:
        """The box map with `statuses` applied (a new dict; this state is untouched)."""
        return {**self.boxes, **statuses}

    def agents_in(self, *statuses: BoxStatus) -> tuple[str, ...]:
        """Boxes in any of `statuses`: touched ones in the order touched, then in plan order."""
        wanted = set(statuses)
        touched = [a for a in self.changed if self.status(a) in wanted]
        seen = set(self.changed)
        rest = [a for a in self.spec.steps if a not in seen and self.status(a) in wanted]
        return (*touched, *rest)

    @property
    def passed_agents(self) -> tuple[str, ...]:
        """Agents of the waves whose gates passed (before the current wave)."""
        return tuple(a for w in self.spec.waves[: self.wave] for a in w.agents)

    @property
    def current_wave(self) -> Wave | None:
        return self.spec.waves[self.wave] if self.wave < len(self.spec.waves) else None

    @property
    def settled(self) -> bool:
        """No box operation in flight or waiting for a slot."""
        return not self.busy and not self.restore_queue

    @property
    def outcome(self) -> Outcome | None:
        return self.phase.outcome
