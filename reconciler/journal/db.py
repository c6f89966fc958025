"""The SQLite file behind the embedded journal and lock: where it lives, its schema, its settings.

One file for every fleet (`reconciler.sqlite3` in the state directory,
`~/.local/state/reconciler` by default, or `$XDG_STATE_HOME/reconciler`). WAL
mode and synchronous=FULL: a record is on disk when the call that wrote it
returns, and readers never block the writer. Autocommit: every record is its
own transaction, except the lock's check-and-take, which runs under
`BEGIN IMMEDIATE` so that two processes can never both take a lock.

The state is private: the directory is made 0700 and the files 0600 (SQLite
gives its -wal and -shm files the database file's mode), whatever the umask. A
state directory that the group or others may write is refused: whoever can
write there can forge the journal or break the lock.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from reconciler.journal.base import JournalError

FILE_NAME: Final = "reconciler.sqlite3"
SCHEMA_VERSION: Final = 2  # 2: the lock holder's identity and heartbeat; fence counters
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
    expires    REAL NOT NULL,
    machine_id TEXT,
    boot_id    TEXT,
    start_time INTEGER,
    heartbeat  REAL
);
CREATE TABLE IF NOT EXISTS fences (
    fleet_id TEXT PRIMARY KEY,
    counter  INTEGER NOT NULL
);
"""

# Columns added since schema 1, added to an older file in place (NULL: unknown).
ADDED_COLUMNS: Final = {
    "locks": (
        ("machine_id", "TEXT"),
        ("boot_id", "TEXT"),
        ("start_time", "INTEGER"),
        ("heartbeat", "REAL"),
    ),
}


PRIVATE_DIR: Final = 0o700
PRIVATE_FILE: Final = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may write: made 0700, or checked if it exists.

    Raises:
        JournalError: it is not a directory, or the group or others may write it.
    """
    try:
        path.mkdir(parents=True, mode=PRIVATE_DIR)
    except FileExistsError:
        pass
    except OSError as exc:
        raise JournalError(
            f"cannot create the state directory {path}: {exc.strerror}; "
            "check its parent's permissions or pass another state directory"
        ) from None
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise JournalError(f"{path} is not a directory; pass another state directory")
    loose = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
             if st.st_mode & bit]  # fmt: skip
    if loose:
        raise JournalError(
            f"the state directory {path} is writable by {' and '.join(loose)} "
            f"(mode {stat.S_IMODE(st.st_mode):o}): anyone who can write there can forge the "
            f"journal or break the fleet lock; refused. Fix it: chmod 700 {path}"
        )
    return path


def private_file(path: Path) -> Path:
    """Create `path` 0600 if missing; tighten it to 0600 if it is looser."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


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
    private_dir(where)
    try:
        for f in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
            if f == path or f.exists():
                private_file(f)
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
    _migrate(conn)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older reconciler up to this schema: add the missing columns
    (existing rows read them as NULL, unknown); tables new since then are made above."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


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
