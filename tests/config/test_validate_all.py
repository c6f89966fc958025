"""validate reports every error of a real repo at once, an unknown key in fleet.yaml included.

The incident: one unknown key in fleet.yaml made `reconcile validate` stop there and hide
every other error in the repo. Here a copy of fleet-config-example/ gets errors in six
files (also a misspelt key in _base.yaml, which used to hide every agent's payload
errors); validate must print each one (file:line:col, rule, did-you-mean), exit 1 and
never show a traceback: through the installed console script in a subprocess and in
process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import load_repo
from reconciler.repo import read_work_tree
from reconciler.testing.console import reconcile_script

from .corpus import LINE_RE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"

# (file, text to find, its replacement, rule, a fragment the message must hold)
BREAKAGE = [
    ("fleet.yaml", "  soak_s: 600", "  soak: 600", "schema.unknown-key", "did you mean 'soak_s'?"),
    ("fleet.yaml", "25%, 100%]", "25%, 90%]", "wave.last", "the last wave is 90%"),
    ("agents/_base.yaml", "labels:", "labls:", "schema.unknown-key", "did you mean 'labels'?"),
    ("agents/tier-fast.yaml", "max_tokens: 512", "max_tokens: lots", "payload.schema", "'lots'"),
    ("shards/us-east.yaml", "tier: fast", "tier: fsat", "tier.unknown", "did you mean 'fast'?"),
    (
        "shards/eu-west.yaml",
        "host: 10.20.0.12",
        "host: 10.20.0.11",
        "agent.duplicate-target",
        "eu-west-fast-002",
    ),
    ("secrets/index.yaml", "name: kb_token", "name: kb_tokn", "secret.undeclared", "'kb_token'"),
]
# The undeclared secret is reported where it is referenced, not in the index; a duplicate
# target at the entry of the second agent.
WHERE = {
    "secret.undeclared": ("agents/_base.yaml", "token: {secret: kb_token}"),
    "agent.duplicate-target": ("shards/eu-west.yaml", "name: eu-west-fast-002"),
}


def _line_of(path: Path, text: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, set[tuple[str, int, str]]]:
    """A copy of the example repo with the errors above, and the (file, line, rule) of each."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    want = set()
    for rel, old, new, rule, _ in BREAKAGE:
        path = repo / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        at_rel, at_text = WHERE.get(rule, (rel, new))
        want.add((at_rel, _line_of(repo / at_rel, at_text), rule))
    return repo, want


def _check(stdout: str, stderr: str, want: set[tuple[str, int, str]], prefix: str) -> None:
    assert "Traceback" not in stdout + stderr
    lines = stdout.splitlines()
    parsed = [LINE_RE.match(line) for line in lines]
    assert all(parsed), f"not one error per line:\n{stdout}"
    got = {(m["file"].removeprefix(prefix), int(m["line"]), m["rule"]) for m in parsed if m}
    assert got == want, stdout
    for _, _, _, rule, fragment in BREAKAGE:
        assert any(m["rule"] == rule and fragment in m["message"] for m in parsed if m), (
            f"no {rule} message with {fragment!r}:\n{stdout}"
        )
    assert f"{len(want)} error(s)" in stderr


def test_console_script_reports_every_error(
    broken: tuple[Path, set[tuple[str, int, str]]],
) -> None:
    """`.venv/bin/reconcile validate --repo X` as a user runs it: all errors, exit 1."""
    repo, want = broken
    done = subprocess.run(
        [reconcile_script(), "validate", "--repo", "fleet"],
        capture_output=True,
        text=True,
        cwd=repo.parent,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    _check(done.stdout, done.stderr, want, "fleet/")


def test_in_process_cli_reports_every_error(
    broken: tuple[Path, set[tuple[str, int, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through the in-process CLI, as text and as JSON."""
    repo, want = broken
    monkeypatch.chdir(repo.parent)
    result = CliRunner().invoke(app, ["validate", "--repo", "fleet"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    _check(result.stdout, result.stderr, want, "fleet/")

    result = CliRunner().invoke(app, ["validate", "--repo", "fleet", "--format", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    got = {(e["file"].removeprefix("fleet/"), e["line"], e["rule"]) for e in doc["errors"]}
    assert got == want


def test_load_repo_raises_every_error(broken: tuple[Path, set[tuple[str, int, str]]]) -> None:
    """The library call behind every command collects them all too (no prefix: repo paths)."""
    repo, want = broken
    with pytest.raises(ConfigErrors) as caught:
        load_repo(read_work_tree(repo))
    got = {(e.where.file, e.where.line, e.rule) for e in caught.value.errors}
    assert got == want


def test_the_unknown_key_alone_is_the_only_error(tmp_path: Path) -> None:
    """With nothing else wrong, the unknown key in fleet.yaml is the one error: the rules
    that read fleet.yaml run on its valid part and defaults, and make up nothing."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    fleet = repo / "fleet.yaml"
    fleet.write_text(
        fleet.read_text(encoding="utf-8").replace("  soak_s: 600", "  soak: 600"), "utf-8"
    )
    with pytest.raises(ConfigErrors) as caught:
        load_repo(read_work_tree(repo))
    assert [(e.where.file, e.rule) for e in caught.value.errors] == [
        ("fleet.yaml", "schema.unknown-key")
    ]
