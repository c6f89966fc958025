"""The pure core imports no I/O libraries: no asyncio, httpx, asyncssh or git.

Walks the AST of every module of reconciler.{model,config,render,diff,plan,report} and
reconciler.rollout.{machine,gates,watchdog} (those that exist), so the rule holds for
imports inside functions and under TYPE_CHECKING too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"
CORE_PACKAGES = ("model", "config", "render", "diff", "plan", "report")
CORE_MODULES = ("rollout/machine", "gates", "rollout/watchdog")
FORBIDDEN = frozenset({"asyncio", "httpx", "asyncssh", "git"})


def core_files() -> list[Path]:
    files: list[Path] = []
    for pkg in CORE_PACKAGES:
        files.extend(sorted((PACKAGE / pkg).rglob("*.py")))
    for mod in CORE_MODULES:
        single, package = PACKAGE / f"{mod}.py", PACKAGE / mod
        files.extend([single] if single.is_file() else sorted(package.rglob("*.py")))
    return files


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module a file imports (absolute imports only)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


FILES = core_files()


def test_the_core_has_modules_to_check() -> None:
    """The walk finds the config, model and render modules (so it cannot pass vacuously)."""
    names = {p.relative_to(PACKAGE).as_posix() for p in FILES}
    assert {"config/load.py", "config/layer.py", "model/agent.py", "render/canonical.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(PACKAGE).as_posix() for p in FILES])
def test_core_module_imports_no_io_library(path: Path) -> None:
    """No core module imports asyncio, httpx, asyncssh or git (gitpython)."""
    assert imported_roots(path) & FORBIDDEN == set()


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    """An import hidden in a function body is still found."""
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import asyncio.subprocess\n    from git import Repo\n")
    assert imported_roots(sample) >= {"asyncio", "git"}
