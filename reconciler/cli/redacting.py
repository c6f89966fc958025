"""stdout and stderr through the redactor: whatever a command prints, no secret value shows.

Every write is scrubbed (reconciler.secrets.redact) before it reaches the real stream;
rich, typer and print all write through sys.stdout / sys.stderr, so this is the one
place the terminal is guarded.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from reconciler.secrets.redact import scrub


class Scrubbing:
    """A text stream that scrubs what is written to it, then passes it on."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(scrub(text))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@contextlib.contextmanager
def redacted_output() -> Iterator[None]:
    """sys.stdout and sys.stderr scrubbed for the block (nested uses wrap once)."""
    out, err = sys.stdout, sys.stderr
    if not isinstance(out, Scrubbing):
        sys.stdout = Scrubbing(out)
    if not isinstance(err, Scrubbing):
        sys.stderr = Scrubbing(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
