"""The pure core imports no I/O libraries: no asyncio, httpx, asyncssh or git.

Walks the AST of every module of reconciler.{model,config,render,diff,plan,report,secrets}
and reconciler.rollout.{machine,gates,watchdog} (those that exist), so the rule holds for
imports inside functions and under TYPE_CHECKING too.

config and secrets are held to more: they parse, validate and fingerprint the bytes they
are handed, so they import nothing that opens files, runs processes or keeps a database
(os, subprocess, sqlite3, pathlib's concrete paths, ...), nor the edges that do the
reading for them (reconciler.repo reads the fleet repo, reconciler.secretstore finds
secret values).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from reconciler.cli.app import COMMANDS, ReconcileGroup, app
from reconciler.cli.lazy import LazyCommand

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"
CORE_PACKAGES = ("model", "config", "render", "diff", "plan", "report", "secrets")
CORE_MODULES = ("rollout/machine", "gates", "rollout/watchdog")
FORBIDDEN = frozenset({"asyncio", "httpx", "asyncssh", "git"})

# Pure packages: no I/O at all. A forbidden name covers its submodules too.
PURE_PACKAGES = ("config", "secrets")
IO_MODULES = frozenset({"os", "subprocess", "sqlite3", "shutil", "tempfile", "socket", "glob"})
EDGE_PACKAGES = frozenset(
    {
        "reconciler.repo",
        "reconciler.secretstore",
        "reconciler.transport",
        "reconciler.journal",
        "reconciler.engine",
        "reconciler.devtools",
    }
)
PURE_FORBIDDEN = FORBIDDEN | IO_MODULES | EDGE_PACKAGES
# pathlib only for its pure paths, which never touch the file system.
PURE_PATHLIB = frozenset({"PurePath", "PurePosixPath", "PureWindowsPath"})


def core_files() -> list[Path]:
    files: list[Path] = []
    for pkg in CORE_PACKAGES:
        files.extend(sorted((PACKAGE / pkg).rglob("*.py")))
    for mod in CORE_MODULES:
        single, package = PACKAGE / f"{mod}.py", PACKAGE / mod
        files.extend([single] if single.is_file() else sorted(package.rglob("*.py")))
    return files


def pure_files() -> list[Path]:
    return [f for pkg in PURE_PACKAGES for f in sorted((PACKAGE / pkg).rglob("*.py"))]


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module a file imports (absolute imports only)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _package_of(path: Path) -> str:
    """The dotted package a file of reconciler/ (or a test's stand-in) belongs to."""
    try:
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
    except ValueError:
        return "reconciler"
    parts = rel.parts if rel.name == "__init__" else rel.parts[:-1]
    return ".".join(p for p in parts if p != "__init__")


def imported_names(path: Path) -> set[str]:
    """Dotted names of everything a file imports (see `names_in`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return names_in(tree, _package_of(path))


def names_in(tree: ast.AST, package: str) -> set[str]:
    """`a.b` for `import a.b`, and `a.b` and `a.b.c` for `from a.b import c` (c may be a
    module or a name); relative imports are resolved against `package`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(names: set[str]) -> set[str]:
    """The imported names a pure module may not have."""
    bad = {n for n in names for f in PURE_FORBIDDEN if n == f or n.startswith(f"{f}.")}
    bad |= {
        n
        for n in names
        if n.startswith("pathlib.") and n.removeprefix("pathlib.") not in PURE_PATHLIB
    }
    if "pathlib" in names and not any(n.startswith("pathlib.") for n in names):
        bad.add("pathlib")  # a bare `import pathlib` reaches Path too
    return bad


FILES = core_files()
PURE = pure_files()


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


def test_the_pure_packages_have_modules_to_check() -> None:
    """The stricter walk covers config and the pure part of secrets."""
    names = {p.relative_to(PACKAGE).as_posix() for p in PURE}
    assert {"config/repo.py", "config/source.py", "config/load.py", "secrets/values.py"} <= names


@pytest.mark.parametrize("path", PURE, ids=[p.relative_to(PACKAGE).as_posix() for p in PURE])
def test_pure_module_imports_no_io(path: Path) -> None:
    """config and secrets import no I/O module and no edge package (reconciler.repo, ...)."""
    assert forbidden_imports(imported_names(path)) == set()


def test_the_pure_walk_sees_edges_processes_and_paths(tmp_path: Path) -> None:
    """Dotted, `from package import module`, relative and pathlib imports are all seen."""
    sample = tmp_path / "m.py"
    sample.write_text(
        "import subprocess\n"
        "from reconciler import repo\n"
        "from pathlib import Path, PurePosixPath\n"
        "def f():\n"
        "    import sqlite3\n"
        "    from reconciler.secretstore.local import fleet_key\n"
        "    from os import environ\n"
    )
    assert forbidden_imports(imported_names(sample)) == {
        "subprocess",
        "reconciler.repo",
        "pathlib.Path",
        "sqlite3",
        "reconciler.secretstore.local",
        "reconciler.secretstore.local.fleet_key",
        "os",
        "os.environ",
    }
    ok = tmp_path / "ok.py"
    ok.write_text("from pathlib import PurePosixPath\nfrom reconciler.config import errors\n")
    assert forbidden_imports(imported_names(ok)) == set()


def test_relative_imports_resolve_against_the_package() -> None:
    """`from ..repo import x` in reconciler/config/ names reconciler.repo."""
    tree = ast.parse("from ..repo import read_work_tree\nfrom . import errors\n")
    names = names_in(tree, _package_of(PACKAGE / "config" / "m.py"))
    assert forbidden_imports(names) == {"reconciler.repo", "reconciler.repo.read_work_tree"}
    assert "reconciler.config.errors" in names


# -- start-up: a command loads only what it uses (issue 19) ------------------------------------

ROOT = PACKAGE.parent
EXAMPLE = ROOT / "fleet-config-example"
# Runs the console script in-process, then writes which modules were loaded at its exit.
_PROBE = """
import json, sys
from reconciler.cli.app import main
out, argv = sys.argv[1], sys.argv[2:]
try:
    main(argv)
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
finally:
    with open(out, "w", encoding="utf-8") as f:
        json.dump(sorted(sys.modules), f)
sys.exit(code)
"""
# What only the rollout commands need: SSH, HTTP, git, age, metrics, deep diffs, the journal.
ROLLOUT_LIBRARIES = frozenset(
    {"asyncssh", "httpx", "git", "pyrage", "prometheus_client", "deepdiff", "sqlite3"}
)
ROLLOUT_PACKAGES = frozenset(
    {
        "reconciler.engine",
        "reconciler.transport",
        "reconciler.journal",
        "reconciler.metrics",
        "reconciler.secretstore",
        "reconciler.repo.git",
    }
)
# What `reconcile validate` itself needs; --help needs none of it.
CONFIG_LIBRARIES = frozenset({"pydantic", "jsonschema", "ruamel", "rich"})


def loaded_modules(tmp_path: Path, *argv: str) -> tuple[int, str, set[str]]:
    """Run `reconcile ARGV` in a fresh interpreter: its exit code, stdout, and sys.modules."""
    record = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(record), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert record.is_file(), done.stderr
    return done.returncode, done.stdout, set(json.loads(record.read_text(encoding="utf-8")))


def under(modules: set[str], names: frozenset[str]) -> set[str]:
    """The loaded modules that are one of `names` or inside one."""
    return {m for m in modules for n in names if m == n or m.startswith(f"{n}.")}


def test_help_loads_no_library_beyond_typer(tmp_path: Path) -> None:
    """`reconcile --help` lists every command, loading neither rollout nor config libraries."""
    code, stdout, modules = loaded_modules(tmp_path, "--help")
    assert code == 0
    for command in ("validate", "diff", "apply", "status", "rotate-secret", "demo", "secrets"):
        assert f"  {command} " in stdout
    assert under(modules, ROLLOUT_LIBRARIES | CONFIG_LIBRARIES | ROLLOUT_PACKAGES) == set()
    assert "asyncio" not in modules
    assert "typer" in modules  # the probe did see the process's imports


@pytest.mark.parametrize("command", ["apply", "diff", "demo", "secrets"])
def test_a_commands_help_loads_none_of_its_use_case(tmp_path: Path, command: str) -> None:
    """`reconcile CMD --help` is complete (its options) yet loads no rollout library."""
    code, stdout, modules = loaded_modules(tmp_path, command, "--help")
    assert code == 0
    assert "--repo" in stdout or "Commands:" in stdout
    assert under(modules, ROLLOUT_LIBRARIES | ROLLOUT_PACKAGES) == set()


def test_validate_loads_only_the_config_loader(tmp_path: Path) -> None:
    """`reconcile validate` of the example loads the config libraries and none of the rest."""
    code, _, modules = loaded_modules(tmp_path, "validate", "--repo", str(EXAMPLE))
    assert code == 0
    assert under(modules, CONFIG_LIBRARIES) >= {"pydantic", "jsonschema", "ruamel.yaml"}
    assert under(modules, ROLLOUT_LIBRARIES | ROLLOUT_PACKAGES) == set()
    assert "asyncio" not in modules


def test_validate_refusal_loads_no_journal(tmp_path: Path) -> None:
    """A refused validate (no fleet.yaml) prints its error without loading the journal."""
    code, _, modules = loaded_modules(tmp_path, "validate", "--repo", str(tmp_path))
    assert code == 1
    assert under(modules, ROLLOUT_LIBRARIES | ROLLOUT_PACKAGES) == set()


def test_the_probe_sees_a_rollout_command_load_its_libraries(tmp_path: Path) -> None:
    """The same probe on `reconcile unlock` (which opens the journal) does see them."""
    state = tmp_path / "state"
    code, _, modules = loaded_modules(
        tmp_path, "unlock", "--force", "no-such-lock", "--repo", str(EXAMPLE),
        "--state-dir", str(state),
    )  # fmt: skip
    assert code == 1  # no such lock: nothing released
    assert {"sqlite3", "reconciler.journal"} <= modules


@pytest.mark.parametrize("entry", COMMANDS, ids=[c.name for c in COMMANDS])
def test_the_root_help_shows_each_commands_own_summary(entry: LazyCommand) -> None:
    """The summary `reconcile --help` shows without importing a command is the line the
    command's own help gives (its docstring, or its group's help=), at every width."""
    built = entry.build()
    assert built.name == entry.name
    for limit in (30, 45, 60, 80, 200):
        assert entry.short_help(limit) == built.get_short_help_str(limit)


def test_the_root_group_builds_a_command_only_when_it_is_looked_up() -> None:
    """Listing the commands builds none; looking one up builds that one, as typer would."""
    group = typer.main.get_command(app)
    assert isinstance(group, ReconcileGroup)
    assert list(group.commands) == [c.name for c in COMMANDS]
    assert group.lazy.short_help("demo", 200).startswith("A local fleet")
    validate = group.commands["validate"]
    assert {o for p in validate.params for o in p.opts} >= {"--repo", "--format"}
    assert "validate" in group.lazy and "nope" not in group.lazy
    with pytest.raises(KeyError):
        group.commands["nope"]
