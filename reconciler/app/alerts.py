"""`reconcile alerts render` and `reconcile alerts test`: the compiled alerts on disk, checked.

render writes the repo's compiled rule files and alertmanager.yml (0600, secret URLs as
placeholders) to a directory. test renders into a temporary directory beside copies of
the repo's promtool unit tests (alerts/tests/*.yaml), then runs `promtool check rules`,
`promtool test rules` and `amtool check-config`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reconciler.alerts import CompiledAlerts, compile_alerts
from reconciler.app.config import load_config
from reconciler.errors import Refused

ALERTMANAGER_FILE: Final = "alertmanager.yml"
TESTS_DIR: Final = Path("alerts") / "tests"
TOOL_TIMEOUT_S: Final = 120.0
_INSTALL: Final = {
    "promtool": "Debian's prometheus package (apt-get install prometheus)",
    "amtool": "Debian's prometheus-alertmanager package (apt-get install prometheus-alertmanager)",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """What render wrote: the directory, each file (by name) and each group's content hash."""

    out: Path
    files: tuple[str, ...]
    groups: dict[str, str]


def write_compiled(compiled: CompiledAlerts, out: Path) -> tuple[str, ...]:
    """Write the rule files and alertmanager.yml (0600) into `out`, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for name, data in sorted(compiled.rule_files.items()):
        _write(out / name, data, 0o644)
        names.append(name)
    _write(out / ALERTMANAGER_FILE, compiled.alertmanager, 0o600)
    names.append(ALERTMANAGER_FILE)
    return tuple(names)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    tmp.replace(path)


def render_alerts(repo: Path, out: Path) -> Rendered:
    """Compile the repo's alerts and write them to `out`.

    Raises:
        Refused: the repo does not load, or `out` cannot be written.
    """
    compiled = compile_alerts(load_config(repo))
    try:
        files = write_compiled(compiled, out)
    except OSError as exc:
        raise Refused(f"cannot write the rendered alerts to {out}: {exc.strerror}") from None
    return Rendered(out, files, dict(compiled.groups))


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One check: the command line as shown, whether it passed, and its output."""

    command: str
    ok: bool
    output: str


@dataclass(frozen=True, slots=True)
class Tested:
    """Every check run by `alerts test`, and the unit test files it used."""

    runs: tuple[ToolRun, ...]
    test_files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)


def find_tool(name: str, given: str | None = None) -> str:
    """The path of promtool or amtool; Refused, saying how to install it, when absent."""
    path = shutil.which(given or name)
    if path is None:
        where = f"{given} is not an executable; " if given else f"{name} is not on PATH; "
        raise Refused(f"{where}install {_INSTALL[name]} or pass --{name} PATH")
    return path


def _load_test(path: Path, shown: str) -> dict[str, Any]:
    try:
        value = YAML(typ="safe", pure=True).load(path.read_bytes())
    except YAMLError as exc:
        raise Refused(f"{shown}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise Refused(f"{shown}: a promtool test file must be a map (rule_files, tests)")
    return value


def _run(argv: list[str], cwd: Path, shown: str, names: Mapping[str, str]) -> ToolRun:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return ToolRun(shown, False, f"timed out after {TOOL_TIMEOUT_S:.0f} s")
    output = (done.stdout + done.stderr).strip()
    for tmp, real in names.items():
        output = output.replace(tmp, real)
    return ToolRun(shown, done.returncode == 0, output)


def test_alerts(repo: Path, promtool: str | None = None, amtool: str | None = None) -> Tested:
    """Check the compiled rules and alertmanager.yml, and run the repo's promtool unit tests.

    Raises:
        Refused: the repo does not load, a tool is missing, a test file is not YAML.
    """
    prom = find_tool("promtool", promtool)
    am = find_tool("amtool", amtool)
    loaded = load_config(repo)
    compiled = compile_alerts(loaded)
    tests = sorted((repo / TESTS_DIR).glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="reconcile-alerts-") as tmp:
        work = Path(tmp)
        files = write_compiled(compiled, work)
        names = {f"{work}/": "", str(work): "."}
        test_names: list[str] = []
        for path in tests:
            shown = (TESTS_DIR / path.name).as_posix()
            body = _load_test(path, shown)
            copy = f"test-{path.name}"
            (work / copy).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
            names[copy] = shown
            test_names.append(copy)
        rules = [f for f in files if f != ALERTMANAGER_FILE]
        runs = [_run([prom, "check", "rules", *rules], work, "promtool check rules", names)]
        if test_names:
            runs.append(
                _run([prom, "test", "rules", *test_names], work, "promtool test rules", names)
            )
        runs.append(
            _run([am, "check-config", ALERTMANAGER_FILE], work, "amtool check-config", names)
        )
    return Tested(tuple(runs), tuple(names[n] for n in test_names))
