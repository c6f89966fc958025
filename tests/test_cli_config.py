"""The config commands through the real entry point: validate, render, explain, agents.

In-process with typer's CliRunner on `reconciler.cli.app.app`, and once as a user runs it:
the `reconcile` console script installed in the venv, in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import typer
from config.corpus import LINE_RE, load_case, materialize
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.config.repo import load_repo
from reconciler.render import render_payload
from reconciler.repo import read_work_tree
from reconciler.testing.console import reconcile_script

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fleet-config-example"
BAD = ROOT / "tests" / "cases" / "config" / "bad"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def leaf_commands(
    group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every runnable command path of the app (subcommands of groups included)."""
    out: list[tuple[str, ...]] = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, typer.core.TyperGroup):
            out.extend(leaf_commands(cmd, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = leaf_commands(typer.main.get_command(app))


class TestConsoleScript:
    def test_installed_reconcile_validates_the_example(self) -> None:
        """`.venv/bin/reconcile validate` on the example repo: exit 0, summary on stderr."""
        done = subprocess.run(
            [reconcile_script(), "validate", "--repo", "fleet-config-example"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, "")
        assert "ok: 200 agents in 3 shards and 3 tiers, fleet acme-support" in done.stderr

    def test_installed_reconcile_refuses_a_bad_repo_with_exit_1(self, tmp_path: Path) -> None:
        """A repo with errors in three files: exit 1, one parseable line per error on stdout."""
        materialize(load_case(BAD / "many--all-collected.json"), tmp_path / "repo")
        done = subprocess.run(
            [reconcile_script(), "validate", "--repo", "repo"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        lines = done.stdout.splitlines()
        assert len(lines) == 4
        assert all(LINE_RE.match(line) for line in lines)
        assert "4 error(s)" in done.stderr


class TestValidate:
    def test_valid_repo_exits_0_with_nothing_on_stdout(self) -> None:
        """Data on stdout, progress on stderr: a valid repo prints no errors."""
        code, out, err = run("validate", "--repo", "fleet-config-example")
        assert (code, out) == (0, "")
        assert "200 agents" in err

    def test_json_format_of_a_valid_repo(self) -> None:
        """--format json says valid, no errors, and the agent count."""
        code, out, _ = run("validate", "--repo", "fleet-config-example", "--format", "json")
        assert code == 0
        assert json.loads(out) == {"valid": True, "errors": [], "agents": 200}

    def test_directory_without_fleet_yaml_exits_1_and_says_what_to_pass(
        self, tmp_path: Path
    ) -> None:
        """Pointing --repo at the wrong directory is exit 1 with a hint, not a traceback."""
        code, _, err = run("validate", "--repo", str(tmp_path))
        assert code == 1
        assert "no fleet.yaml here" in err
        assert "--repo" in err


@pytest.fixture(scope="module")
def payloads() -> dict[str, dict[str, object]]:
    """Every example agent's payload, loaded once."""
    repo = load_repo(read_work_tree(EXAMPLE))
    return {name: ea.agent.config for name, ea in repo.agents.items()}


class TestRender:
    def test_render_prints_exactly_the_canonical_bytes(
        self, payloads: dict[str, dict[str, object]]
    ) -> None:
        """`render AGENT` writes render_payload's bytes, and --sha their sha256."""
        code, out, _ = run("render", "eu-west-fast-003", "--repo", "fleet-config-example")
        want = render_payload(payloads["eu-west-fast-003"])
        assert (code, out.encode()) == (0, want)
        code, out, _ = run("render", "eu-west-fast-003", "--repo", "fleet-config-example", "--sha")
        assert (code, out) == (0, hashlib.sha256(want).hexdigest() + "\n")

    def test_render_json_is_the_payload(self, payloads: dict[str, dict[str, object]]) -> None:
        """--format json prints the payload as JSON."""
        code, out, _ = run(
            "render", "us-east-smart-002", "--repo", "fleet-config-example", "--format", "json"
        )
        assert code == 0
        assert json.loads(out) == payloads["us-east-smart-002"]

    def test_render_of_an_unknown_agent_exits_1(self) -> None:
        """A name that is not in the fleet: exit 1 and how to list the agents."""
        code, out, err = run("render", "nobody", "--repo", "fleet-config-example")
        assert (code, out) == (1, "")
        assert "reconcile agents" in err

    def test_render_of_a_bad_repo_prints_its_errors_and_exits_1(self, tmp_path: Path) -> None:
        """Commands that need a valid repo print every config error on stderr, then exit 1."""
        materialize(load_case(BAD / "tier.unknown--typo.json"), tmp_path / "repo")
        code, out, err = run("render", "one-fast-1", "--repo", str(tmp_path / "repo"))
        assert (code, out) == (1, "")
        assert "error[tier.unknown]" in err
        assert "reconcile validate" in err


class TestAgents:
    def test_selector_picks_by_tier_and_shard(self) -> None:
        """--selector tier=batch,shard=eu-west lists the 11 batch agents of eu-west."""
        code, out, _ = run(
            "agents",
            "--repo",
            "fleet-config-example",
            "-l",
            "tier=batch,shard=eu-west",
            "--format",
            "json",
        )
        assert code == 0
        rows = json.loads(out)
        assert len(rows) == 11
        assert {(r["tier"], r["shard"]) for r in rows} == {("batch", "eu-west")}

    def test_selector_globs_names_and_labels(self) -> None:
        """Globs on names, and labels as keys (region is a label set by each shard)."""
        code, out, _ = run(
            "agents",
            "--repo",
            "fleet-config-example",
            "-l",
            "name=ap-south-*,region=ap-south",
            "--format",
            "json",
        )
        assert code == 0
        assert len(json.loads(out)) == 50

    def test_text_table_ends_with_the_count(self) -> None:
        """The text table ends with 'N of M agents'."""
        code, out, _ = run("agents", "--repo", "fleet-config-example", "-l", "tier=smart")
        assert code == 0
        assert out.rstrip().endswith("49 of 200 agents")

    def test_bad_selector_exits_1(self) -> None:
        """A selector without '=' is exit 1 with the expected form."""
        code, _, err = run("agents", "--repo", "fleet-config-example", "-l", "tier")
        assert code == 1
        assert "key=value" in err


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_of_every_command_shows_an_example(command: tuple[str, ...]) -> None:
    """`reconcile CMD --help` exits 0 and shows at least one `Example:` line."""
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert re.search(r"^\s*Examples?:", out, re.MULTILINE), out


def test_version_flag_prints_the_version() -> None:
    """`reconcile --version` prints the package version."""
    code, out, _ = run("--version")
    assert code == 0
    assert out.startswith("reconcile ")
