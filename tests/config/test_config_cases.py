"""The bad-input corpus through `reconcile validate`: each rule has a case, each case its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.config.errors import RULES

from .corpus import LINE_RE, TINY, case_files, load_case, materialize

CASES = case_files()


def _validate(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["validate", "--repo", str(repo), *args])
    return result.exit_code, result.stdout, result.stderr


def test_tiny_repo_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base of every case validates cleanly, so each case's errors are its own."""
    monkeypatch.chdir(tmp_path)
    materialize({"files": {}}, tmp_path / "repo")
    code, stdout, stderr = _validate(Path("repo"))
    assert (code, stdout) == (0, "")
    assert "ok: 2 agents" in stderr


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_case_is_refused_at_its_file_line_and_rule(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate exits 1 and prints exactly the case's errors, one parseable line each."""
    case = load_case(path)
    monkeypatch.chdir(tmp_path)
    materialize(case, tmp_path / "repo")
    code, stdout, stderr = _validate(Path("repo"))
    assert code == 1, stdout + stderr
    lines = stdout.splitlines()
    parsed = [LINE_RE.match(line) for line in lines]
    assert all(parsed), f"not one error per line: {lines}"
    got = [(m["file"], int(m["line"]), m["rule"]) for m in parsed if m]
    want = [(f"repo/{e['file']}", e["line"], e["rule"]) for e in case["errors"]]
    assert sorted(got) == sorted(want), f"{case['about']}:\n{stdout}"
    assert got == sorted(got, key=lambda g: (g[0], g[1])), "errors are printed in file order"
    for e in case["errors"]:
        if "message" in e:
            assert any(
                m["rule"] == e["rule"] and e["message"] in m["message"] for m in parsed if m
            ), f"no {e['rule']} message with {e['message']!r}:\n{stdout}"
    assert f"{len(lines)} error(s)" in stderr


def test_every_rule_has_a_case() -> None:
    """Each rule id in RULES is the expected rule of at least one bad-input case."""
    covered = {e["rule"] for p in CASES for e in load_case(p)["errors"]}
    assert set(RULES) - covered == set()
    assert covered - set(RULES) == set(), "a case names a rule that does not exist"


def test_case_file_names_start_with_their_rule() -> None:
    """A case named RULE--variant expects RULE, so the corpus is browsable by rule."""
    for p in CASES:
        rule = p.stem.split("--")[0]
        if rule in RULES:
            assert rule in {e["rule"] for e in load_case(p)["errors"]}, p.name


def test_json_format_lists_the_same_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--format json gives every error with file, line, column, rule and message."""
    monkeypatch.chdir(tmp_path)
    case = load_case(next(p for p in CASES if p.stem == "many--all-collected"))
    materialize(case, tmp_path / "repo")
    code, stdout, _ = _validate(Path("repo"), "--format", "json")
    doc = json.loads(stdout)
    assert code == 1
    assert doc["valid"] is False
    got = sorted((e["file"], e["line"], e["rule"]) for e in doc["errors"])
    assert got == sorted((f"repo/{e['file']}", e["line"], e["rule"]) for e in case["errors"])
    assert all(e["column"] >= 1 and e["message"] for e in doc["errors"])


def test_tiny_fixture_is_not_touched_by_cases() -> None:
    """Cases copy the tiny repo; its own files stay the valid base."""
    assert (TINY / "fleet.yaml").read_text(encoding="utf-8").startswith("# The smallest valid")
