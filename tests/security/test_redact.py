"""Secret values never leave the process: one redactor, applied by every sink.

A canary value is registered as the secret store registers what it resolves; then it is
searched for raw, base64, hex, URL-encoded and with whitespace stripped in what the CLI
prints, what the journal stores and what a failing reload's stderr becomes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.secrets.redact import MASK, REDACTOR, Redactor, forms

CANARY = "sk-canary-7f3a9c2e1b"


def spellings(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), raw.hex(), raw.hex().upper(),
            quote(value, safe="")]  # fmt: skip


def leaks(text: str) -> list[str]:
    flat = "".join(text.split())  # a value wrapped across lines
    return [s for s in spellings(CANARY) if s in text or s in flat]


@pytest.fixture
def canary() -> Iterator[str]:
    REDACTOR.add([CANARY])
    yield CANARY
    REDACTOR.clear()


def test_every_spelling_of_a_value_is_masked() -> None:
    r = Redactor()
    r.add([CANARY])
    text = (
        " | ".join(spellings(CANARY)) + " | " + base64.urlsafe_b64encode(CANARY.encode()).decode()
    )
    out = r.scrub(text)
    assert leaks(out) == [] and out.count(MASK) >= 5


def test_short_values_are_not_registered() -> None:
    """Redacting "on" or "1" everywhere would garble every message and protect nothing."""
    assert forms("on") == set()
    r = Redactor()
    r.add(["on", b"12345"])
    assert r.scrub("turned on at 12345") == "turned on at 12345"


def test_the_cli_prints_no_registered_value(canary: str, tmp_path: Path) -> None:
    """A path that happens to hold the value, echoed in an error: masked on the terminal."""
    repo = tmp_path / f"repo-{canary}"
    repo.mkdir()
    result = CliRunner().invoke(app, ["validate", "--repo", str(repo)])
    assert result.exit_code != 0
    assert MASK in result.output
    assert leaks(result.output) == []
