"""The reconciler's own state for one command: where it lives, its lock and journal, who we are.

`open_state(fleet, state_dir)` is the only place that decides where the state lives
and the holder identity (user@host pid N) that the fleet lock and every box lease carry.
The journal and the lock: `--state postgresql://...` (a team's shared backend), else
--state-dir, else fleet.yaml's `state:` URL, else its `state_dir`, else the SQLite file in
~/.local/state/reconciler. Incidents and saved tracebacks stay in the local state directory.
The journal and the lock are opened on first use, so a dry run creates nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import InputError
from reconciler.journal.base import Holder, Journal, JournalError, Lock, LockHeld, LockLease
from reconciler.journal.db import FILE_NAME as JOURNAL_FILE
from reconciler.journal.db import default_state_dir, private_dir, private_file
from reconciler.journal.store import State
from reconciler.journal.store import open_state as open_store
from reconciler.journal.takeover import acquire_or_take_over
from reconciler.journal.urls import is_url, shown
from reconciler.model.fleet import FleetFile
from reconciler.secrets.redact import scrub

Tell = Callable[[str], None]  # one line for the operator (the CLI prints it on stderr)


def holder_id() -> str:
    """user@host pid N: who holds a lease or the lock (the uid when the user has no name)."""
    return str(Holder.here())


def state_dir_of(given: Path | None, fleet_state_dir: str | None) -> Path:
    """--state-dir, else fleet.yaml state_dir, else ~/.local/state/reconciler."""
    return Path(given or fleet_state_dir or default_state_dir()).expanduser()


_SELECTED: list[str] = []  # --state, as the CLI parsed it (select_state)


def select_state(url: str | None) -> None:
    """Use the shared backend at `url` for this command (the CLI's --state).

    Raises:
        InputError: not a postgresql:// URL.
    """
    _SELECTED.clear()
    if url is None:
        return
    if not is_url(url):
        raise InputError(
            f"--state {shown(url)!r} is not a postgresql://USER@HOST:PORT/DATABASE URL; "
            "for a local directory use --state-dir"
        )
    _SELECTED.append(url)


def state_selected() -> bool:
    """Whether --state named a shared backend (then fleet.yaml is not needed to find it)."""
    return bool(_SELECTED)


def state_url_of(state_dir: Path | None, fleet_state: str | None) -> str | None:
    """--state, else (without --state-dir) fleet.yaml's `state:`; None: the SQLite file."""
    if _SELECTED:
        return _SELECTED[0]
    if state_dir is None and is_url(fleet_state):
        return fleet_state
    return None


@dataclass
class StateDir:
    """One state: its local directory (incidents, tracebacks, and the SQLite journal unless
    `url` names a shared PostgreSQL one), the holder identity, its journal and lock once
    opened."""

    path: Path
    holder: Holder
    url: str | None = None
    _store: State | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """Where the journal and lock live, as it may be printed (no password)."""
        return shown(self.url) if self.url else str(self.path)

    @property
    def holder_id(self) -> str:
        return str(self.holder)

    def _open(self) -> State:
        if self._store is None:
            self._store = open_store(self.path, url=self.url)
        return self._store

    @property
    def lock(self) -> Lock:
        return self._open().lock

    @property
    def journal(self) -> Journal:
        return self._open().journal

    def existing_journal(self) -> Journal | None:
        """The journal when it exists already (reading creates no local file), else None.
        A shared database always exists (its tables are made on first use)."""
        if self.url is None and self._store is None and not (self.path / JOURNAL_FILE).is_file():
            return None
        return self.journal

    async def take_lock(
        self, fleet_id: str, *, ttl_s: float, wait_s: float | None = None, tell: Tell
    ) -> tuple[LockLease, LockLease | None]:
        """The fleet lock (a dead local holder's is broken): (ours, the broken one).

        `wait_s`: wait up to that long for a live holder to let go, polling (in this
        thread: the lock's SQLite connection belongs to it).

        Raises:
            LockHeld: still held by another (when the wait, if any, is over); it is named.
        """
        deadline = time.monotonic() + (wait_s or 0.0)
        told = False
        while True:
            try:
                return acquire_or_take_over(self.lock, fleet_id, self.holder, ttl_s=ttl_s)
            except LockHeld as exc:
                left = deadline - time.monotonic()
                if wait_s is None or left <= 0:
                    raise
                if not told:
                    tell(
                        f"waiting up to {left:.0f}s for fleet {fleet_id}'s lock, held by "
                        f"{exc.lease.describe()}"
                    )
                    told = True
                await asyncio.sleep(min(0.25, left))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@contextmanager
def open_state(fleet: FleetFile | None, state_dir: Path | None) -> Iterator[StateDir]:
    """The state of `fleet` (--state-dir `state_dir` overrides fleet.yaml's), closed after.

    `fleet` may be None only when `state_dir` is given (fleet.yaml is then not needed).
    """
    given = fleet.state_dir if fleet is not None else None
    url = state_url_of(state_dir, fleet.state if fleet is not None else None)
    state = StateDir(state_dir_of(state_dir, given), Holder.here(), url)
    try:
        yield state
    finally:
        state.close()


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` (0600) in a directory only we may write (0700, or refused);
    the text goes through the redactor first."""
    private_dir(path.parent)
    private_file(path)
    path.write_text(scrub(text), encoding="utf-8")
    return path


def save_traceback(state_dir: Path, label: str, text: str) -> str:
    """Keep a traceback in STATE_DIR/errors/ (0600); its path, for the one-line error.

    Raises:
        OSError: it cannot be saved (also when the state dir is one others may write:
            the caller is already reporting an error and says it was not saved).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        private_dir(state_dir)
        return str(write_private(state_dir / "errors" / f"{stamp}-{label}.txt", text))
    except JournalError as exc:
        raise OSError(str(exc)) from None
