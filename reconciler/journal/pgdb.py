"""The PostgreSQL database behind the shared journal and lock: connecting, its schema, its version.

A team's state lives in one PostgreSQL database (`--state postgresql://user@host/db`
or fleet.yaml `state:`). The URL names no password: libpq takes it from the
environment (`PGPASSWORD`, or reconciler's `RECONCILER_STATE_PASSWORD`) or a
password file (`PGPASSFILE`, `~/.pgpass`, or `passfile=` in the URL). Every
statement is autocommitted (a record is committed when the call returns) except
the few that must be atomic, which run in one transaction. The schema is created
idempotently, under a transaction-level advisory lock so that two processes
opening a fresh database at once do not race, and a `reconciler_schema` table
holds its version.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

from reconciler.journal.base import JournalError
from reconciler.journal.urls import PASSWORD_ENV, shown

SCHEMA_VERSION: Final = 2  # 2: the workers' tables (coordinators, box_work)
SCHEMA_LOCK_KEY: Final = 0x7265636F6E63  # "reconc": serialises schema creation

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS reconciler_schema (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    rollout_id      TEXT PRIMARY KEY,
    fleet_id        TEXT NOT NULL,
    plan_id         TEXT NOT NULL,
    target_revision TEXT NOT NULL,
    plan            TEXT NOT NULL,
    pre_shas        TEXT NOT NULL,
    holder          TEXT NOT NULL,
    started_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION,
    outcome         TEXT,
    summary         TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_by_fleet ON rollouts (fleet_id, started_at);
CREATE TABLE IF NOT EXISTS steps (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollout_id TEXT NOT NULL REFERENCES rollouts (rollout_id),
    kind       TEXT NOT NULL CHECK (kind IN ('intent', 'result', 'event')),
    agent      TEXT,
    intent     BIGINT REFERENCES steps (seq),
    body       TEXT NOT NULL,
    at         DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_rollout ON steps (rollout_id, kind, seq);
CREATE TABLE IF NOT EXISTS locks (
    fleet_id    TEXT PRIMARY KEY,
    lock_id     TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    rollout_id  TEXT,
    since       DOUBLE PRECISION NOT NULL,
    expires     DOUBLE PRECISION NOT NULL,
    machine_id  TEXT,
    boot_id     TEXT,
    start_time  BIGINT,
    heartbeat   DOUBLE PRECISION,
    backend_pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fences (
    fleet_id TEXT PRIMARY KEY,
    counter  BIGINT NOT NULL
);
CREATE OR REPLACE FUNCTION reconciler_now() RETURNS DOUBLE PRECISION LANGUAGE sql VOLATILE
    AS 'SELECT extract(epoch FROM clock_timestamp())::double precision';
CREATE TABLE IF NOT EXISTS coordinators (
    rollout_id TEXT PRIMARY KEY REFERENCES rollouts (rollout_id),
    fleet_id   TEXT NOT NULL,
    version    TEXT NOT NULL,
    revision   TEXT NOT NULL,
    options    TEXT NOT NULL,
    heartbeat  DOUBLE PRECISION NOT NULL,
    done       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS box_work (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollout_id    TEXT NOT NULL REFERENCES coordinators (rollout_id),
    agent         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('apply', 'restore')),
    command       TEXT NOT NULL,
    extra         TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'claimed', 'done')),
    token         BIGINT NOT NULL DEFAULT 0,
    worker        TEXT,
    claimed_until DOUBLE PRECISION,
    attempts      INTEGER NOT NULL DEFAULT 0,
    result        TEXT
);
CREATE INDEX IF NOT EXISTS box_work_open ON box_work (rollout_id, state, id)
"""


def session(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommitted session to `url` (password from the environment or a file).

    Raises:
        JournalError: the database cannot be reached or refuses us; the URL is named
            without its password.
    """
    conninfo = url
    password = os.environ.get(PASSWORD_ENV)
    if password and "PGPASSWORD" not in os.environ and urlsplit(url).password is None:
        conninfo = make_conninfo(url, password=password)
    try:
        return psycopg.connect(
            conninfo, autocommit=True, connect_timeout=10, application_name="reconciler"
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JournalError(
            f"cannot open the shared state {shown(url)}: {reason}; check the URL, that the "
            f"database runs, and the password (PGPASSWORD, {PASSWORD_ENV} or a passfile)"
        ) from None


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A session to `url` with the schema created (idempotently) and its version checked.

    Raises:
        JournalError: unreachable, refused, or made by a newer reconciler.
    """
    conn = session(url)
    try:
        _create(conn, url)
    except psycopg.Error as exc:
        conn.close()
        raise JournalError(f"cannot set up the shared state {shown(url)}: {exc}") from None
    except JournalError:
        conn.close()
        raise
    return conn


def _create(conn: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    """The schema, made once (under an advisory lock), and its version checked. A database
    already at this version is only read (a role that may not create tables can use it)."""
    made = conn.execute("SELECT to_regclass('reconciler_schema') IS NOT NULL").fetchone()
    if made is not None and made[0] is True:
        row = conn.execute("SELECT max(version) FROM reconciler_schema").fetchone()
        if row is not None and row[0] == SCHEMA_VERSION:
            return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)  # our own constant
        row = conn.execute("SELECT max(version) FROM reconciler_schema").fetchone()
        version = row[0] if row is not None else None
        if version is None:
            conn.execute("INSERT INTO reconciler_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
        elif isinstance(version, int) and version < SCHEMA_VERSION:  # tables added above
            conn.execute("UPDATE reconciler_schema SET version = %s", (SCHEMA_VERSION,))
        elif isinstance(version, int) and version > SCHEMA_VERSION:
            raise JournalError(
                f"{shown(url)}: journal schema {version} is newer than this reconciler's "
                f"({SCHEMA_VERSION}); upgrade reconciler, or use another --state"
            )
