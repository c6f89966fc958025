"""Crash points for the crash-resume tests: `RECONCILER_CRASH_AT=<boundary>[:<n>]`.

When the variable is set, `python -m reconciler.testing.crashing` (never `reconcile`
itself) builds a hook that kills the process with SIGKILL
the n-th time (default 1st) any box or the rollout reaches that step boundary (the
driver's `BOUNDARIES`, or the resume's `RESUME_BOUNDARIES`) - before the step
runs, right after its intent is recorded (held in the journal's batch until the next
commit; the commits themselves are `JOURNAL_BOUNDARIES`, journal.commit and
journal.committed). No cleanup, no `finally`, no flush:
exactly what a killed CI runner leaves behind. Unset, it does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Final

ENV: Final = "RECONCILER_CRASH_AT"

Hook = Callable[[str, str | None], None]


def parse(spec: str) -> tuple[str, int]:
    """`apply.write:3` -> ("apply.write", 3); `watch` -> ("watch", 1)."""
    name, _, count = spec.partition(":")
    n = int(count) if count else 1
    if not name or n < 1:
        raise ValueError(f"{ENV}={spec!r}: expected <boundary>[:<n>] with n >= 1")
    return name, n


def hook(
    known: tuple[str, ...], env: Mapping[str, str] | None = None, chain: Hook | None = None
) -> Hook | None:
    """A boundary hook that dies at the configured point; None when the variable is unset.

    Raises:
        ValueError: the variable names no boundary in `known`.
    """
    spec = (env if env is not None else os.environ).get(ENV, "")
    if not spec:
        return None
    name, n = parse(spec)
    if name not in known:
        return None  # a boundary of another stage (apply vs resume): inert here
    seen = 0

    def at(boundary: str, agent: str | None) -> None:
        nonlocal seen
        if chain is not None:
            chain(boundary, agent)
        if boundary != name:
            return
        seen += 1
        if seen == n:
            sys.stderr.write(f"{ENV}: killing myself at {boundary}:{n} ({agent or '-'})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return at
