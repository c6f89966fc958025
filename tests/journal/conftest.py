"""The journal and lock contract: the same tests run on both backends (SQLite, PostgreSQL).

A test that takes the `backend` fixture runs twice: on a SQLite state directory
(tmp_path) and on a real PostgreSQL (one server for the whole session, started
by reconciler.testing.postgres as the `postgres` user; one database per module,
emptied before each test).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from reconciler.journal import SqliteJournal, SqliteLock, State, open_state
from reconciler.journal.db import Now, utc_now
from reconciler.journal.pglock import PostgresLock
from reconciler.journal.postgres import PostgresJournal
from reconciler.testing.postgres import PgServer, PostgresUnavailable

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL for the session; fails (never skips) under CI when it cannot start."""
    try:
        server = PgServer.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_module_url(pg_server: PgServer) -> str:
    """One database per test module (creating one per test costs ~0.5 s)."""
    url = pg_server.create_database()
    PostgresJournal(url).close()  # the schema, once
    return url


@dataclass
class Backend:
    """One backend under test: makes journals, locks and states on the same storage."""

    name: str
    path: Path
    url: str | None

    @property
    def location(self) -> str:
        """What a child process needs to open the same state (a directory or a URL)."""
        return self.url or str(self.path)

    def journal(self, *, now: Now = utc_now) -> SqliteJournal | PostgresJournal:
        if self.url is None:
            return SqliteJournal(self.path, now=now)
        return PostgresJournal(self.url, now=now)

    def lock(
        self,
        *,
        now: Now = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> SqliteLock | PostgresLock:
        if self.url is None:
            return SqliteLock(self.path, now=now, sleep=sleep, monotonic=monotonic)
        return PostgresLock(self.url, now=now, sleep=sleep, monotonic=monotonic)

    def state(self, *, now: Now = utc_now) -> State:
        return open_state(self.path, url=self.url, now=now)


def open_location(location: str) -> State:
    """The state a child process opens from `Backend.location`."""
    if location.startswith("postgresql://"):
        return open_state(url=location)
    return open_state(Path(location))


def empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("TRUNCATE steps, rollouts, locks, fences RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend in turn, empty."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path, None)
    url: str = request.getfixturevalue("pg_module_url")
    empty(url)
    return Backend("postgresql", tmp_path, url)


AnyJournal = SqliteJournal | PostgresJournal
AnyLock = SqliteLock | PostgresLock
