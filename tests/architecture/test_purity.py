"""The layering holds: pure packages load no I/O, and only edge packages read the clock or
open sockets.

Each pure package is imported in a fresh interpreter (so nothing a test loaded earlier
hides a leak), then `sys.modules` is checked for I/O libraries and for our own I/O
packages. A second check scans the source: `time.time`, `time.monotonic`,
`datetime.now` and `socket` appear only in edge packages.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"

# The pure core and the model: values in, values out.
PURE = ("model", "alerts", "config", "render", "diff", "plan", "report", "status", "rollout",
        "gates", "secrets", "capacity")  # fmt: skip
# Where I/O lives: these may read the clock, open sockets, touch files and databases.
EDGE = ("transport", "metrics", "journal", "repo", "secretstore", "github", "engine", "app", "cli",
        "demo", "testing", "devtools")  # fmt: skip
IO_LIBRARIES = ("asyncssh", "httpx", "sqlite3", "git", "psycopg", "asyncio", "subprocess")

PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by(package: str) -> set[str]:
    """Every module loaded by importing `package` and all its modules, in a new interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, f"reconciler.{package}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return set(json.loads(out.stdout))


def test_every_package_is_classified() -> None:
    """A new package must be put in PURE or EDGE (so it cannot dodge the check)."""
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert found - set(PURE) - set(EDGE) == set()
    assert set(PURE) <= found


@pytest.mark.parametrize("package", PURE)
def test_pure_package_loads_no_io(package: str) -> None:
    """Importing every module of a pure package loads no I/O library and no edge package."""
    loaded = loaded_by(package)
    io = {m for m in loaded if m.split(".")[0] in IO_LIBRARIES}
    ours = {m for m in loaded if m.split(".")[:2] in ([["reconciler", e] for e in EDGE])}
    assert not io, f"reconciler.{package} loads I/O libraries: {sorted(io)}"
    assert not ours, f"reconciler.{package} loads edge packages: {sorted(ours)}"


CLOCK_AND_NETWORK = {("time", "time"), ("time", "monotonic"), ("datetime", "now")}


def edge_only_uses(path: Path) -> list[str]:
    """`time.time`, `time.monotonic`, `datetime.now` calls and `socket` imports in a file."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in CLOCK_AND_NETWORK:
                found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]  # fmt: skip
            if any(n.split(".")[0] == "socket" for n in names):
                found.append(f"import socket (line {node.lineno})")
    return found


PURE_FILES = sorted(f for p in PURE for f in (PACKAGE / p).rglob("*.py"))


@pytest.mark.parametrize("path", PURE_FILES, ids=[p.relative_to(PACKAGE).as_posix()
                                                   for p in PURE_FILES])  # fmt: skip
def test_pure_module_reads_no_clock_and_opens_no_socket(path: Path) -> None:
    """The pure core takes `now` and a Clock; only edge packages read the time or the net."""
    assert edge_only_uses(path) == []


def test_the_scan_finds_a_clock_read(tmp_path: Path) -> None:
    """The source scan is not vacuous: it sees each forbidden use."""
    sample = tmp_path / "m.py"
    sample.write_text(
        "import socket\nimport time\nfrom datetime import datetime\n"
        "a = time.monotonic()\nb = datetime.now()\nc = time.time()\n"
    )
    assert len(edge_only_uses(sample)) == 4
