"""The reconciler's own state, opened in one call: the journal and the lock of one backend.

SQLite is the embedded default: one file in the state directory, one connection
for both. A `postgresql://` URL selects the shared backend for teams
(journal/postgres.py, pglock.py): one session for the lock's
reads, one for the journal (its batches are transactions), and one more per held lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.journal.base import Journal, Lock
from reconciler.journal.db import Now, connect, utc_now
from reconciler.journal.lock import SqliteLock
from reconciler.journal.sqlite import SqliteJournal
from reconciler.journal.urls import is_url, shown


@dataclass(frozen=True, slots=True)
class State:
    """The journal and the lock of one state directory or database, sharing one connection."""

    journal: Journal
    lock: Lock
    closers: tuple[Callable[[], None], ...] = field(default=(), repr=False)
    where: str = ""  # the state directory, or the URL without its password

    def close(self) -> None:
        for close in self.closers:
            close()


def open_state(
    state_dir: Path | None = None,
    *,
    url: str | None = None,
    now: Now = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> State:
    """Open (creating if needed) the state at `url` (a `postgresql://` database) if given,
    else in `state_dir` (default ~/.local/state/reconciler).

    Raises:
        JournalError: the directory, file or database cannot be used.
    """
    if url is not None:
        if not is_url(url):
            raise ValueError(f"not a postgresql:// URL: {url.split('@')[-1]}")
        from reconciler.journal.pgdb import connect as pg_connect  # noqa: PLC0415 (psycopg only when asked)
        from reconciler.journal.pglock import PostgresLock  # noqa: PLC0415 (psycopg only when asked)
        from reconciler.journal.postgres import PostgresJournal  # noqa: PLC0415 (psycopg only when asked)

        pg_journal = PostgresJournal(now=now, conn=pg_connect(url))
        pg_lock = PostgresLock(url, now=now, sleep=sleep, monotonic=monotonic)
        return State(
            journal=pg_journal,
            lock=pg_lock,
            closers=(pg_lock.close, pg_journal.close),
            where=shown(url),
        )
    conn = connect(state_dir)
    journal = SqliteJournal(now=now, conn=conn)
    return State(
        journal=journal,
        lock=SqliteLock(now=now, sleep=sleep, monotonic=monotonic, conn=conn),
        closers=(journal.close,),
        where=str(state_dir) if state_dir else "",
    )
