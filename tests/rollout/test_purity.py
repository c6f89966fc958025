"""The plan and the rollout core stay pure: importing them pulls in no I/O library."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = (
    "reconciler.plan",
    "reconciler.rollout",
    "reconciler.rollout.machine",
    "reconciler.rollout.watchdog",
    "reconciler.rollout.records",
    "reconciler.rollout.diagram",
)
IO = ("asyncio", "httpx", "asyncssh", "git", "sqlite3", "subprocess")


def test_core_imports_no_io_library() -> None:
    """A fresh interpreter importing the core has none of asyncio, httpx, asyncssh, git, sqlite3."""
    code = (
        "import sys, json\n"
        + "".join(f"import {m}\n" for m in PURE)
        + f"print(json.dumps([m for m in {list(IO)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
