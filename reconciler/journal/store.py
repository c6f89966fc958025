"""The reconciler's own state, opened in one call: the journal and the lock over one SQLite file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.journal.db import Now, connect, utc_now
from reconciler.journal.lock import SqliteLock
from reconciler.journal.sqlite import SqliteJournal


@dataclass(frozen=True, slots=True)
class State:
    """The journal and the lock of one state directory, sharing one connection."""

    journal: SqliteJournal
    lock: SqliteLock

    def close(self) -> None:
        self.journal.close()


def open_state(
    state_dir: Path | None = None,
    *,
    now: Now = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> State:
    """Open (creating if needed) the state in `state_dir` (default ~/.local/state/reconciler).

    Raises:
        JournalError: the directory or file cannot be used.
    """
    conn = connect(state_dir)
    return State(
        journal=SqliteJournal(now=now, conn=conn),
        lock=SqliteLock(now=now, sleep=sleep, monotonic=monotonic, conn=conn),
    )
