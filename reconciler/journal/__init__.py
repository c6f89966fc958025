"""The reconciler's own state: a durable journal of rollouts and the one-rollout-per-fleet lock."""

from reconciler.journal.base import (
    Holder,
    Journal,
    JournalError,
    Lock,
    LockError,
    LockHeld,
    LockLease,
    LockLost,
    RolloutRecord,
    StepRecord,
    UnknownRollout,
)
from reconciler.journal.db import default_state_dir
from reconciler.journal.lock import SqliteLock
from reconciler.journal.sqlite import SqliteJournal, new_rollout_id
from reconciler.journal.store import State, open_state

__all__ = [
    "Holder",
    "Journal",
    "JournalError",
    "Lock",
    "LockError",
    "LockHeld",
    "LockLease",
    "LockLost",
    "RolloutRecord",
    "SqliteJournal",
    "SqliteLock",
    "State",
    "StepRecord",
    "UnknownRollout",
    "default_state_dir",
    "new_rollout_id",
    "open_state",
]
