"""`pr comment`, `review`, `drift-issue` and `validate --format github`, run in process
against the fake GitHub server (a real HTTP server on 127.0.0.1) and a real git repo."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.testing.github import TOKEN, FakeGitHub

from .conftest import EXAMPLE, git

MARK = "<!-- reconciler:fleet-diff -->"


def cli(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert TOKEN not in result.output, "the token was printed"
    return result


# -- pr comment ----------------------------------------------------------------------------


def test_three_runs_leave_one_comment_found_across_pages(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.open_pull(7, "a" * 40)
    for i in range(130):  # the marked comment lands on the second page of 100
        github.add_comment(7, f"chatter {i}")
    body = tmp_path / "diff.md"
    for run in range(3):
        body.write_text(f"### Fleet diff run {run}\n", encoding="utf-8")
        done = cli("pr", "comment", "--pr", "7", "--body-file", body)
        assert done.exit_code == 0, done.output
        assert ("created" if run == 0 else "updated") in done.output
    marked = [c for c in github.comments(7) if MARK in c["body"]]
    assert len(marked) == 1
    assert marked[0]["body"] == f"{MARK}\n### Fleet diff run 2\n"
    assert len(github.requests("POST")) == 1 and len(github.requests("PATCH")) == 2
    pages = [r for r in github.requests("GET") if r.path.endswith("/comments")]
    assert any(r.query.get("page") == "2" for r in pages), "the Link header was not followed"


def test_comment_summary_and_own_marker(github: FakeGitHub, tmp_path: Path) -> None:
    github.open_pull(3, "b" * 40)
    body = tmp_path / "b.md"
    body.write_text("cost report\n", encoding="utf-8")
    assert cli("pr", "comment", "--pr", "3", "--body-file", body, "--summary").exit_code == 0
    done = cli("pr", "comment", "--pr", "3", "--body-file", body, "--marker", "cost")
    assert done.exit_code == 0, done.output
    bodies = [c["body"] for c in github.comments(3)]
    assert bodies == [f"{MARK}\ncost report\n", "<!-- reconciler:cost -->\ncost report\n"]
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "cost report\n"


def test_a_copied_marker_in_a_persons_comment_is_not_taken(
    github: FakeGitHub, tmp_path: Path
) -> None:
    github.open_pull(4, "d" * 40)
    github.add_comment(4, f"quoting the bot:\n{MARK}\nold", login="someone")
    body = tmp_path / "b.md"
    body.write_text("diff\n", encoding="utf-8")
    for _ in range(2):
        assert cli("pr", "comment", "--pr", "4", "--body-file", body).exit_code == 0
    comments = github.comments(4)
    assert [c["user"]["login"] for c in comments] == ["someone", "github-actions[bot]"]
    assert comments[0]["body"].endswith("old") and comments[1]["body"] == f"{MARK}\ndiff\n"


def test_comment_errors_are_clear(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = tmp_path / "b.md"
    body.write_text("x\n", encoding="utf-8")
    missing = cli("pr", "comment", "--pr", "99", "--body-file", body)
    assert missing.exit_code == 1 and "HTTP 404" in missing.output
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrongTokenValue42")
    github.open_pull(1, "c" * 40)
    bad = cli("pr", "comment", "--pr", "1", "--body-file", body)
    assert bad.exit_code == 1 and "HTTP 401" in bad.output and "Bad credentials" in bad.output
    assert "ghs_wrongTokenValue42" not in bad.output
    monkeypatch.delenv("GITHUB_TOKEN")
    unset = cli("pr", "comment", "--pr", "1", "--body-file", body)
    assert unset.exit_code == 1 and "GITHUB_TOKEN is not set" in unset.output
    nofile = cli("pr", "comment", "--pr", "1", "--body-file", tmp_path / "nope.md")
    assert nofile.exit_code != 0 and "nope.md" in nofile.output


# -- review ----------------------------------------------------------------------------------


def review(fleet_repo: dict[str, Any], branch: str, pr: int = 5) -> Any:
    return cli(
        "review", "--repo", fleet_repo["repo"], "--base", fleet_repo["base"],
        "--head", fleet_repo[branch], "--pr", str(pr),
    )  # fmt: skip


def test_cost_change_needs_an_approval_on_the_head(
    github: FakeGitHub, fleet_repo: dict[str, Any]
) -> None:
    head = fleet_repo["cost"]
    github.open_pull(5, head)
    refused = review(fleet_repo, "cost")
    assert refused.exit_code == 1, refused.output
    assert (
        "cost-impacting" in refused.output
        and "@Alice, @acme/agent-platform-leads" in refused.output
    )
    assert "CODEOWNERS" in refused.output  # the team cannot be checked with this token
    github.add_review(5, "alice", "APPROVED", commit_id="0" * 40)  # before a later push
    stale = review(fleet_repo, "cost")
    assert stale.exit_code == 1 and "older commit" in stale.output
    github.add_review(5, "mallory", "APPROVED")  # not an approver
    assert review(fleet_repo, "cost").exit_code == 1
    github.add_review(5, "ALICE", "APPROVED")
    ok = review(fleet_repo, "cost")
    assert ok.exit_code == 0, ok.output
    assert "approved by @alice" in ok.output
    github.add_review(5, "alice", "CHANGES_REQUESTED")
    assert review(fleet_repo, "cost").exit_code == 1


def test_team_approver_counts_when_membership_is_readable(
    github: FakeGitHub, fleet_repo: dict[str, Any]
) -> None:
    github.open_pull(5, fleet_repo["cost"])
    github.add_review(5, "lead-lee", "APPROVED")
    assert review(fleet_repo, "cost").exit_code == 1
    github.state.teams_readable = True
    github.state.teams["acme/agent-platform-leads"] = {"lead-lee"}
    ok = review(fleet_repo, "cost")
    assert ok.exit_code == 0 and "member of @acme/agent-platform-leads" in ok.output


def test_access_change_and_base_rules(github: FakeGitHub, fleet_repo: dict[str, Any]) -> None:
    github.open_pull(5, fleet_repo["access"])
    refused = review(fleet_repo, "access")
    assert refused.exit_code == 1 and "[access]" in refused.output and "@sec-bob" in refused.output
    github.add_review(5, "sec-bob", "APPROVED")
    assert review(fleet_repo, "access").exit_code == 0
    # The head adds mallory to the rules: the base's rules judge, so her approval is not enough.
    github.open_pull(6, fleet_repo["self-approve"])
    github.add_review(6, "mallory", "APPROVED")
    judged = review(fleet_repo, "self-approve", pr=6)
    assert judged.exit_code == 1 and "@sec-bob" in judged.output, judged.output


def test_plain_settings_need_nothing_and_call_nobody(
    github: FakeGitHub, fleet_repo: dict[str, Any]
) -> None:
    done = review(fleet_repo, "settings", pr=404)
    assert done.exit_code == 0 and "no approval needed" in done.output
    assert github.requests() == []


def test_moved_head_is_refused(github: FakeGitHub, fleet_repo: dict[str, Any]) -> None:
    github.open_pull(5, "f" * 40)
    done = review(fleet_repo, "cost")
    assert done.exit_code == 1 and "moved" in done.output


def test_codeowners_written_from_the_rules(fleet_repo: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / ".github" / "CODEOWNERS"
    done = cli("review", "--codeowners", "--repo", fleet_repo["repo"], "--out", out)
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert "/agents/ @Alice @acme/agent-platform-leads" in text
    assert "/fleet.yaml @sec-bob" in text


# -- drift-issue --------------------------------------------------------------------------------


def test_drift_issue_opened_updated_and_closed(github: FakeGitHub, tmp_path: Path) -> None:
    body = tmp_path / "drift.md"
    body.write_text("2 agents drifted\n", encoding="utf-8")
    github.open_pull(1, "a" * 40)  # a pull request is listed with the issues too
    assert cli("drift-issue", "--exit-code-from", "0").exit_code == 0
    assert github.issues() == []
    opened = cli("drift-issue", "--exit-code-from", "2", "--body-file", body)
    assert opened.exit_code == 0 and "opened drift issue #2" in opened.output
    again = cli("drift-issue", "--exit-code-from", "1", "--body-file", body)
    assert again.exit_code == 0 and "updated drift issue #2" in again.output
    [issue] = github.issues()
    assert issue["body"].startswith("<!-- reconciler:drift -->\n")
    assert "could not be read" in issue["body"] and "2 agents drifted" in issue["body"]
    assert [lb["name"] for lb in issue["labels"]] == ["reconciler-drift"]
    closed = cli("drift-issue", "--exit-code-from", "0")
    assert closed.exit_code == 0 and "closed drift issue #2" in closed.output
    assert github.issues()[0]["state"] == "closed"
    assert "No drift" in github.comments(2)[0]["body"]
    assert cli("drift-issue", "--exit-code-from", "2", "--body-file", body).exit_code == 0
    assert len(github.issues()) == 2  # a new drift after the close: a new issue
    wrong = cli("drift-issue", "--exit-code-from", "3")
    assert wrong.exit_code == 1 and "--exit-code-from 3" in wrong.output


def test_drift_issue_says_the_check_failed_when_diff_could_not_compare(
    github: FakeGitHub, tmp_path: Path
) -> None:
    """A config error on main makes diff exit 1 with no report: the issue says the check
    failed and quotes the error, never "some boxes could not be read"."""
    repo = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, repo)
    tier = repo / "agents" / "tier-fast.yaml"
    tier.write_text(tier.read_text().replace("max_tokens: 512", "max_tokens: lots"))
    drift = cli("diff", "--exit-code", "--format", "markdown", "--repo", repo)
    assert drift.exit_code == 1 and drift.stdout == ""
    report, errors = tmp_path / "drift.md", tmp_path / "drift.err"
    report.write_text(drift.stdout, encoding="utf-8")
    errors.write_text(drift.stderr, encoding="utf-8")
    done = cli("drift-issue", "--exit-code-from", "1", "--body-file", report,
               "--error-file", errors)  # fmt: skip
    assert done.exit_code == 0, done.output
    [issue] = github.issues()
    assert issue["title"] == "Fleet drift check failed: reconcile diff could not compare"
    assert "could not be read" not in issue["body"]
    assert "agents/tier-fast.yaml" in issue["body"] and "max_tokens" in issue["body"]


# -- validate --format github ---------------------------------------------------------------------


def test_validate_github_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = tmp_path / "project"
    repo = top / "fleet"
    shutil.copytree(EXAMPLE, repo)
    git(top, "init", "-q")
    tier = repo / "agents" / "tier-fast.yaml"
    tier.write_text(tier.read_text().replace("max_tokens: 512", "max_tokens: lots"))
    fleet = repo / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("  soak_s: 600", "  soak: 600"))
    monkeypatch.chdir(tmp_path)
    done = cli("validate", "--repo", repo, "--format", "github")
    assert done.exit_code == 1
    lines = done.stdout.splitlines()
    errors = [ln for ln in lines if ln.startswith("::error ")]
    assert any(
        ln.startswith("::error file=fleet/agents/tier-fast.yaml,line=6,col=")
        and ",title=payload.schema::" in ln
        for ln in errors
    ), errors
    assert any(ln.startswith("::error file=fleet/fleet.yaml,") for ln in errors), errors
    assert all("\n" not in ln for ln in errors)
    assert lines[-1].startswith("reconcile validate: ") and "error" in lines[-1]
    ok = cli("validate", "--repo", EXAMPLE, "--format", "github")
    assert ok.exit_code == 0 and "no errors" in ok.stdout
