"""The failure budget: how many boxes may fail (apply or watchdog) before everything rolls back.

Cumulative across waves. With a budget of 0 the first failure rolls the whole
rollout back; within the budget only the failed box is restored and the
rollout goes on. A gate failure ignores the budget: it always rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Failure:
    """One box's failure, charged to the budget: the box and what went wrong."""

    agent: str
    what: str


@dataclass(frozen=True, slots=True)
class Budget:
    """The boxes allowed to fail, and those that did, in order."""

    allowed: int
    spent: tuple[Failure, ...] = ()

    def __post_init__(self) -> None:
        if self.allowed < 0:
            raise ValueError(f"a failure budget cannot be negative, got {self.allowed}")

    def charge(self, agent: str, what: str) -> Budget:
        """The budget with one more failed box."""
        return Budget(self.allowed, (*self.spent, Failure(agent, what)))

    @property
    def exceeded(self) -> bool:
        return len(self.spent) > self.allowed

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(f.agent for f in self.spent)

    def describe(self) -> str:
        """`2 boxes failed, budget 1: a1 (apply failed at reload: exit 1), ...`."""
        shown = "; ".join(f"{f.agent} ({f.what})" for f in self.spent[:5])
        more = f"; and {len(self.spent) - 5} more" if len(self.spent) > 5 else ""
        noun = "box" if len(self.spent) == 1 else "boxes"
        return f"{len(self.spent)} {noun} failed, budget {self.allowed}: {shown}{more}"
