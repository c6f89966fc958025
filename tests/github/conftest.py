"""Fixtures for the GitHub-facing commands: the fake GitHub server and a git fleet repo."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.testing.github import FakeGitHub

EXAMPLE = Path(__file__).resolve().parents[2] / "fleet-config-example"
GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def edit(repo: Path, path: str, old: str, new: str, message: str) -> str:
    """Replace `old` once in a file, commit; the new head sha."""
    file = repo / path
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    git(repo, "commit", "-qam", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGitHub]:
    """A fake GitHub for the test, its GITHUB_* variables set in the environment."""
    with FakeGitHub() as fake:
        for k, v in fake.env(GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md")).items():
            monkeypatch.setenv(k, v)
        yield fake


@pytest.fixture(scope="module")
def fleet_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A git copy of fleet-config-example with users as review rules, and three branches'
    heads: `cost` (a model change), `access` (a host change), `settings` (a log level)."""
    repo = tmp_path_factory.mktemp("fleet") / "fleet"
    shutil.copytree(EXAMPLE, repo)
    text = (repo / "fleet.yaml").read_text(encoding="utf-8")
    text = text.replace(
        '  cost_impacting_approvers: ["@acme/agent-platform-leads"]\n',
        '  cost_impacting_approvers: ["@Alice", "@acme/agent-platform-leads"]\n'
        '  access_approvers: ["@sec-bob"]\n',
    )
    (repo / "fleet.yaml").write_text(text, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    heads = {"base": base}
    for name, path, old, new in (
        (
            "cost",
            "agents/tier-fast.yaml",
            "  model: claude-haiku-4-5\n",
            "  model: claude-sonnet-4\n",
        ),
        ("access", "shards/eu-west.yaml", "    host: 10.20.0.11\n", "    host: 10.20.9.11\n"),
        ("settings", "shards/eu-west.yaml", "    log_level: warning\n", "    log_level: info\n"),
        (
            "self-approve",  # the head adds its author to the rules: the base's rules judge
            "fleet.yaml",
            '["@Alice", "@acme/agent-platform-leads"]',
            '["@Alice", "@acme/agent-platform-leads", "@mallory"]\n  # and a cost change\n',
        ),
    ):
        git(repo, "checkout", "-q", "-b", name, base)
        heads[name] = edit(repo, path, old, new, name)
    git(repo, "checkout", "-q", "main")
    heads["repo"] = repo  # type: ignore[assignment]
    return heads  # type: ignore[return-value]
