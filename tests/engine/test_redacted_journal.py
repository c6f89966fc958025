"""A failing reload's stderr holds a secret value: the journal stores the reason, masked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from reconciler.journal.db import FILE_NAME as JOURNAL_FILE
from reconciler.journal.sqlite import SqliteJournal
from reconciler.secrets.redact import MASK, REDACTOR
from reconciler.transport.base import CommandResult
from reconciler.transport.fake import FakeBox, agent_commands

from .helpers import make_fleet

CANARY = "sk-canary-7f3a9c2e1b"


@pytest.fixture
def canary() -> Iterator[str]:
    REDACTOR.add([CANARY])  # as the secret store does with every value it resolves
    yield CANARY
    REDACTOR.clear()


async def test_a_failing_reloads_stderr_is_scrubbed_before_the_journal(
    canary: str, tmp_path: Path
) -> None:
    """The agent prints the secret in its reload error; the journal never stores it."""

    def leaky(box: FakeBox, argv: Sequence[str]) -> CommandResult:
        if argv[-1] == "reload":
            return CommandResult(1, "", f"auth failed with key {canary}")
        return agent_commands(box, argv)

    fleet = make_fleet(1, waves=("100%",))
    for box in fleet.boxes.values():
        box.handler = leaky
    journal = SqliteJournal(tmp_path / "state")
    try:
        result = await fleet.driver(journal=journal).run()
    finally:
        journal.close()
    assert str(result.outcome) in ("rolled-back", "aborted")
    reasons = " ".join(str(f.get("reason")) for f in fleet.notes("box.failed"))
    assert "auth failed" in reasons  # the reason itself is kept
    db = sqlite3.connect(tmp_path / "state" / JOURNAL_FILE)
    try:
        rows = " ".join(str(r) for r in db.execute("SELECT body FROM steps"))
        rows += " ".join(str(r) for r in db.execute("SELECT summary FROM rollouts"))
    finally:
        db.close()
    assert "auth failed" in rows and MASK in rows
    assert CANARY not in rows and CANARY.encode().hex() not in rows
