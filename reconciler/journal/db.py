"""The SQLite file behind the embedded journal and lock: where it lives, its schema, its settings.

One file for every fleet (`reconciler.sqlite3` in the state directory,
`~/.local/state/reconciler` by default, or `$XDG_STATE_HOME/reconciler`). WAL
mode and synchronous=FULL: a record is on disk when the call that wrote it
returns, and readers never block the writer. Autocommit: every record is its
own transaction, except the lock's check-and-take, which runs under
`BEGIN IMMEDIATE` so that two processes can never both take a lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from reconciler.journal.base import JournalError

FILE_NAME: Final = "reconciler.sqlite3"
SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_S: Final = 30.0
Now = Callable[[], datetime]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id      TEXT PRIMARY KEY,
    fleet_id        TEXT NOT NULL,
    plan_id         TEXT NOT NULL,
    target_revision TEXT NOT NULL,
    plan            TEXT NOT NULL,
    pre_shas        TEXT NOT NULL,
    holder          TEXT NOT NULL,
    started_at      REAL NOT NULL,
    finished_at     REAL,
    outcome         TEXT,
    summary         TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_by_fleet ON rollouts (fleet_id, started_at);
CREATE TABLE IF NOT EXISTS steps (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id TEXT NOT NULL REFERENCES rollouts (rollout_id),
    kind       TEXT NOT NULL CHECK (kind IN ('intent', 'result', 'event')),
    agent      TEXT,
    intent     INTEGER REFERENCES steps (seq),
    body       TEXT NOT NULL,
    at         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_rollout ON steps (rollout_id, kind, seq);
CREATE TABLE IF NOT EXISTS locks (
    fleet_id   TEXT PRIMARY KEY,
    lock_id    TEXT NOT NULL UNIQUE,
    user       TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    rollout_id TEXT,
    since      REAL NOT NULL,
    expires    REAL NOT NULL
);
"""


def utc_now() -> datetime:
    """The wall clock, timezone-aware (the default `now` of the journal and the lock)."""
    return datetime.now(UTC)


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/reconciler`, or `~/.local/state/reconciler`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reconciler"


def connect(state_dir: Path | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the state file in `state_dir`, with WAL and synchronous=FULL.

    Raises:
        JournalError: the directory or file cannot be used, or was made by a newer reconciler.
    """
    where = state_dir or default_state_dir()
    path = where / FILE_NAME
    # Two processes creating the file at once: switching it to WAL takes an exclusive lock
    # that SQLite's busy handler does not wait for, so the loser retries here instead.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return _open(where, path)
        except JournalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _open(where: Path, path: Path) -> sqlite3.Connection:
    conn: sqlite3.Connection | None = None
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            conn.close()
            raise JournalError(
                f"{path}: journal schema {version} is newer than this reconciler's "
                f"({SCHEMA_VERSION}); upgrade reconciler, or use another --state-dir"
            )
        with transaction(conn):
            _create(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except (OSError, sqlite3.Error) as exc:
        if conn is not None:
            conn.close()
        raise JournalError(
            f"cannot open the journal at {path}: {exc}; check the directory's permissions "
            "or pass another state directory"
        ) from None
    return conn


def _create(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """One transaction: BEGIN IMMEDIATE (the write lock at once), COMMIT, or ROLLBACK on error."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
