"""Where a rollout stands (`Phase`) and how it ended (`Outcome`, with its exit code)."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """The rollout's phase; the last four are terminal."""

    PLANNED = "planned"
    PREFLIGHT = "preflight"
    APPLYING = "applying"
    WATCHING = "watching"
    SOAKING = "soaking"
    GATING = "gating"
    ROLLING_BACK = "rolling-back"
    DONE = "done"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self in _OUTCOME_OF

    @property
    def outcome(self) -> Outcome | None:
        """The outcome a terminal phase stands for (None while the rollout runs)."""
        return _OUTCOME_OF.get(self)


class Outcome(enum.StrEnum):
    """How a rollout ended; `exit_code` is what `reconcile apply` exits with."""

    DONE = "done"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    ABORTED = "aborted"
    # A rollout cut short (crash, signal) that a later run settled without a verdict: the
    # cut-short wave put back, the passed waves kept; the next apply goes on to the head.
    SETTLED = "settled"

    @property
    def exit_code(self) -> int:
        """0 done (or settled), 1 nothing changed (aborted before a write), 3 rolled back,
        4 rollback failed."""
        return _EXIT[self]


_OUTCOME_OF = {
    Phase.DONE: Outcome.DONE,
    Phase.ROLLED_BACK: Outcome.ROLLED_BACK,
    Phase.ROLLBACK_FAILED: Outcome.ROLLBACK_FAILED,
    Phase.ABORTED: Outcome.ABORTED,
}
_EXIT = {
    Outcome.DONE: 0,
    Outcome.SETTLED: 0,
    Outcome.ABORTED: 1,
    Outcome.ROLLED_BACK: 3,
    Outcome.ROLLBACK_FAILED: 4,
}
