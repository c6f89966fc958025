"""The bad-input corpus: tests/cases/config/bad/*.json, each the tiny valid repo plus breakage.

A case is JSON: `about` (one line), `files` (repo path -> new content, or null to remove
the file) and `errors` (every error `reconcile validate` must print: file, line, rule and
optionally a message fragment). Content is a string, `{"base64": ...}` for bytes that are
not UTF-8, or `{"parts": [...]}` of strings and `{"repeat": s, "times": n}` for the big
and deep inputs that would not fit in a case file; `{"symlink": target}` makes a symbolic
link and `{"fifo": true}` a named pipe (what the repo edge must refuse unread).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

# One error of `reconcile validate`: `path:line:col: error[RULE-ID]: message`.
LINE_RE = re.compile(
    r"^(?P<file>[^:\s]+):(?P<line>[1-9][0-9]*):(?P<col>[1-9][0-9]*): "
    r"error\[(?P<rule>[a-z0-9.-]+)\]: (?P<message>\S.*)$"
)
CASES = Path(__file__).resolve().parents[1] / "cases" / "config"
TINY = CASES / "tiny"
BAD = CASES / "bad"


def case_files() -> list[Path]:
    """Every bad-input case, sorted by name."""
    return sorted(BAD.glob("*.json"))


def load_case(path: Path) -> dict[str, Any]:
    """One case as a dict."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def content(spec: Any) -> bytes:
    """The bytes a case's file spec stands for."""
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    out = []
    for part in spec["parts"]:
        out.append(part if isinstance(part, str) else part["repeat"] * part["times"])
    return "".join(out).encode("utf-8")


def materialize(case: dict[str, Any], dest: Path) -> Path:
    """Write the tiny repo with the case's changes applied under `dest`; return its root."""
    shutil.copytree(TINY, dest)
    for rel, spec in case["files"].items():
        path = dest / rel
        if spec is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, dict) and ("symlink" in spec or "fifo" in spec):
            path.unlink(missing_ok=True)
            if "symlink" in spec:
                path.symlink_to(spec["symlink"])
            else:
                os.mkfifo(path)
            continue
        path.write_bytes(content(spec))
    return dest
