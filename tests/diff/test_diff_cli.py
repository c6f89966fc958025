"""`reconcile diff --base --head`: two revisions of a real git repo in a tmp dir, via CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app

from .conftest import EXAMPLE

runner = CliRunner()


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def fleet_git(tmp_path: Path) -> Path:
    """The example in git: commit 1 as is; commit 2: tier fast's model, eu-west's max_tokens."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "fleet as it runs")
    _replace(
        repo / "agents" / "tier-fast.yaml", "model: claude-haiku-4-5", "model: claude-sonnet-4-5"
    )
    _replace(
        repo / "shards" / "eu-west.yaml",
        "    log_level: warning\n",
        "    log_level: warning\n    max_tokens: 2048\n",
    )
    _git(repo, "commit", "-q", "-am", "fast tier on sonnet; eu-west token limit")
    return repo


def _diff(repo: Path, *args: str):
    return runner.invoke(app, ["diff", "--repo", str(repo), *args])


def test_text_diff_of_two_commits(fleet_git: Path) -> None:
    """HEAD~1 -> HEAD shows the tier's model change as one group and the shard's token limit."""
    result = _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Fleet diff acme-support: HEAD~1 (" in out
    assert "78 agents in tier fast  [cost]" in out
    assert "42 agents in tier fast, shard eu-west  [cost]" in out
    assert "max_tokens 4096 → 2048  (shards/eu-west.yaml:12)  [cost]" in out
    assert "model claude-haiku-4-5 → claude-sonnet-4-5  (agents/tier-fast.yaml:5)  [cost]" in out


def test_exit_code_two_when_changes_zero_when_none(fleet_git: Path) -> None:
    """--exit-code: 2 when anything changes, 0 when the revisions give the same fleet."""
    changed = _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert changed.exit_code == 2, changed.output
    same = _diff(fleet_git, "--base", "HEAD", "--head", "HEAD", "--exit-code")
    assert same.exit_code == 0, same.output
    assert "No changes" in same.stdout


def test_unknown_head_revision_exits_one_naming_it(fleet_git: Path) -> None:
    """A head revision that does not exist: exit 1, and the message names it."""
    result = _diff(fleet_git, "--base", "HEAD~1", "--head", "no-such-branch", "--exit-code")
    assert result.exit_code == 1
    assert "head revision" in result.stderr
    assert "no-such-branch" in result.stderr
    assert result.stdout == ""


def test_config_error_in_a_revision_exits_one_naming_the_revision(fleet_git: Path) -> None:
    """A head whose config is invalid: every error printed with the revision, exit 1."""
    _replace(fleet_git / "agents" / "tier-fast.yaml", "max_tokens: 512", "max_tokens: many")
    _git(fleet_git, "commit", "-q", "-am", "broken")
    result = _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert result.exit_code == 1
    assert "head HEAD (" in result.stderr
    assert "agents/tier-fast.yaml:" in result.stderr
    assert "config error(s) in the head revision" in result.stderr


def test_markdown_and_json_formats(fleet_git: Path) -> None:
    """--format markdown prints the PR comment; --format json a document with the summary."""
    md = _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown")
    assert md.exit_code == 0
    assert md.stdout.startswith("### Fleet diff: `acme-support`")
    assert "@acme/agent-platform-leads" in md.stdout
    js = _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD", "--format", "json")
    doc = json.loads(js.stdout)
    assert doc["summary"]["changed"] == 137
    assert doc["diff"]["mode"] == "pr"


def test_work_tree_is_untouched(fleet_git: Path) -> None:
    """Diffing two revisions leaves the work tree and HEAD exactly as they were."""
    (fleet_git / "agents" / "tier-smart.yaml").write_text("# uncommitted edit\n")
    before = _git(fleet_git, "status", "--porcelain"), _git(fleet_git, "rev-parse", "HEAD")
    assert _diff(fleet_git, "--base", "HEAD~1", "--head", "HEAD").exit_code == 0
    assert (
        _git(fleet_git, "status", "--porcelain"),
        _git(fleet_git, "rev-parse", "HEAD"),
    ) == before
    assert (fleet_git / "agents" / "tier-smart.yaml").read_text() == "# uncommitted edit\n"


def test_head_defaults_to_HEAD(fleet_git: Path) -> None:  # noqa: N802
    """--base alone compares with HEAD."""
    result = _diff(fleet_git, "--base", "HEAD~1", "--exit-code")
    assert result.exit_code == 2


def test_costs_file_gives_cost_estimates(fleet_git: Path, tmp_path: Path) -> None:
    """--costs FILE (agent -> USD/day now) turns the model's price ratio into a daily figure."""
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"us-east-fast-001": 2.0}))
    result = _diff(fleet_git, "--base", "HEAD~1", "--costs", str(costs), "--format", "json")
    doc = json.loads(result.stdout)
    agent = next(a for a in doc["diff"]["agents"] if a["agent"] == "us-east-fast-001")
    assert agent["cost"]["delta_per_day"] == 4.0


def test_not_a_git_repo_exits_one(tmp_path: Path) -> None:
    """A --repo that is not a git repository: exit 1, saying so."""
    result = _diff(tmp_path, "--base", "HEAD~1")
    assert result.exit_code == 1
    assert "not a git repository" in result.stderr


@pytest.fixture
def weakening_pr(tmp_path: Path) -> Path:
    """Base: approvers for cost and access. Head: drops them, moves config, trusts /dev/null."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    _replace(
        repo / "fleet.yaml",
        'cost_impacting_approvers: ["@acme/agent-platform-leads"]',
        'cost_impacting_approvers: ["@acme/agent-platform-leads"]\n'
        '  access_approvers: ["@acme/security"]',
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _replace(
        repo / "fleet.yaml",
        'cost_impacting_approvers: ["@acme/agent-platform-leads"]\n'
        '  access_approvers: ["@acme/security"]',
        "cost_impacting_approvers: []",
    )
    _replace(repo / "fleet.yaml", "known_hosts: ~/.ssh/fleet_known_hosts", "known_hosts: /dev/null")
    _replace(
        repo / "agents" / "_base.yaml", "config_path: /etc/agent/", "config_path: /etc/agent/v2/"
    )
    _replace(
        repo / "agents" / "tier-fast.yaml", "model: claude-haiku-4-5", "model: claude-sonnet-4-5"
    )
    _git(repo, "commit", "-q", "-am", "head")
    return repo


def test_pr_is_judged_by_the_base_review_rules(weakening_pr: Path) -> None:
    """A head that drops the approvers still needs the base's, and shows the rules as [access]."""
    md = _diff(weakening_pr, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown")
    assert md.exit_code == 0, md.output
    out = md.stdout
    assert "need review by @acme/security (`fleet.review.access_approvers`" in out
    assert "by @acme/agent-platform-leads (`fleet.review.cost_impacting_approvers`" in out
    assert '| fleet.yaml | `review.access_approvers` | `["@acme/security"]` |' in out
    assert "| fleet.yaml | `connection.known_hosts` |" in out
    assert "200 agents to roll out" in out
    text = _diff(weakening_pr, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "config_path /etc/agent/config.yaml → /etc/agent/v2/config.yaml" in text
    assert "review by @acme/security" in text
    doc = json.loads(
        _diff(weakening_pr, "--base", "HEAD~1", "--head", "HEAD", "--format", "json").stdout
    )
    assert doc["diff"]["access_approvers"] == ["@acme/security"]
    assert doc["diff"]["approvers"] == ["@acme/agent-platform-leads"]
    assert {tuple(c["path"]) for c in doc["diff"]["fleet_access"]} == {
        ("connection", "known_hosts"),
        ("review", "access_approvers"),
        ("review", "cost_impacting_approvers"),
    }
