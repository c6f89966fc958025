"""The installed `reconcile` console script, for tests that run the CLI as a process."""

from __future__ import annotations

import os
import sys
from pathlib import Path


class ConsoleScriptMissing(AssertionError):
    """The venv has no `reconcile` script: the tests fail (never skip), saying what to run."""


def reconcile_script() -> str:
    """The path of .venv/bin/reconcile (beside the running interpreter).

    Raises:
        ConsoleScriptMissing: it is not installed; run `bash scripts/setup`.
    """
    exe = Path(sys.executable).with_name("reconcile")
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise ConsoleScriptMissing(f"run bash scripts/setup: .venv/bin/reconcile missing ({exe})")
    return str(exe)


def crashing_command() -> list[str]:
    """`reconcile` that honours RECONCILER_CRASH_AT (reconciler.testing.crashing)."""
    return [sys.executable, "-m", "reconciler.testing.crashing"]
