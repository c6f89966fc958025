"""reconciler/gates is pure: no I/O, no clock; it takes values."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATES = Path(__file__).resolve().parents[2] / "reconciler" / "gates"
FORBIDDEN = frozenset(
    {"asyncio", "httpx", "asyncssh", "git", "time", "socket", "subprocess", "sqlite3", "os"}
)
FILES = sorted(GATES.glob("*.py"))


def test_the_package_has_its_modules() -> None:
    """The walk sees the package (so it cannot pass vacuously)."""
    names = {p.name for p in FILES}
    assert {"pools.py", "statistics.py", "evaluators.py", "verdict.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_gates_module_imports_no_io_or_clock(path: Path) -> None:
    """No module of reconciler/gates imports an I/O library or a clock."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    assert roots & FORBIDDEN == set()
