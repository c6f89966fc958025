"""The state dir holds who rolled out what and why it failed: only its owner may read or
change it. Dirs are made 0700, files 0600, whatever the umask; a state dir that others may
write is refused, naming the fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.app.state import open_state, save_traceback
from reconciler.journal.base import Holder, JournalError
from reconciler.journal.store import open_state as open_store


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """A umask that would leave everything world-readable and group-writable."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_state_dir_and_its_journal_are_private(tmp_path: Path) -> None:
    """Dir 0700; the SQLite file and its WAL and shared-memory files 0600."""
    where = tmp_path / "state"
    store = open_store(where)
    try:
        store.lock.acquire("f", Holder(user="me", host="here", pid=1), ttl_s=60)
        # while open: the WAL and -shm files exist
        modes = {f.name: _mode(f) for f in where.iterdir()}
    finally:
        store.close()
    assert _mode(where) == 0o700
    assert len(modes) == 3, modes
    assert set(modes.values()) == {0o600}, modes


def test_an_old_world_readable_journal_is_made_private(tmp_path: Path) -> None:
    """A journal file left 0644 by an older reconciler is tightened on open."""
    where = tmp_path / "state"
    open_store(where).close()
    for f in where.iterdir():
        f.chmod(0o644)
    open_store(where).close()
    assert all(_mode(f) == 0o600 for f in where.iterdir())


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_state_dir_others_may_write_is_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    """Group- or world-writable: JournalError saying `chmod 700 DIR`; nothing is created."""
    where = tmp_path / "state"
    where.mkdir()
    where.chmod(mode)
    with pytest.raises(JournalError) as err:
        open_store(where)
    assert f"chmod 700 {where}" in str(err.value)
    assert list(where.iterdir()) == []
    with open_state(None, where) as state, pytest.raises(JournalError, match="chmod 700"):
        _ = state.journal


def test_tracebacks_and_incident_reports_are_private(tmp_path: Path) -> None:
    """STATE_DIR/errors and STATE_DIR/incidents are 0700, their files 0600."""
    from reconciler.app.apply import incident_writer  # noqa: PLC0415
    from reconciler.app.state import write_private  # noqa: PLC0415

    where = tmp_path / "state"
    path = Path(save_traceback(where, "boom", "Traceback ..."))
    assert _mode(path.parent) == 0o700 and _mode(path) == 0o600
    assert callable(incident_writer)
    report = write_private(where / "incidents" / "r1.md", "# incident\n")
    assert _mode(report.parent) == 0o700 and _mode(report) == 0o600
    assert report.read_text() == "# incident\n"
