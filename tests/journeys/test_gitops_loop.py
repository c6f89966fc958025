"""Journey: the GitOps loop end to end, as the workflows run it, with real git and a fake GitHub.

A bare `origin`, a developer's clone and a CI clone, against a 4-box demo fleet (3 tier
fast, 1 tier smart; the demo repo's own fleet.yaml: gates on, 5 s soak). The demo repo
itself is the rollout runner's checkout of main (its fleet.yaml points at the demo's key,
known_hosts, state and age identity). GitHub is reconciler.testing.github's fake REST
server on 127.0.0.1. In order:

1. the headline PR (tier fast: model upgrade, cost-impacting) pushed three times: the
   change, an invalid commit (`validate --format github` prints `::error file=…`; the diff
   step is skipped and the comment says so), its fix; each push's PR job updates the one
   sticky comment: exactly one comment after three pushes, holding the last diff;
2. `review` refuses without an approval, refuses an approval given before the last push,
   and passes with the team lead's approval on the head (membership readable);
3. merged: `git pull` + `apply --yes --format json` rolls it out (0);
4. a bad change (output tokens x6) merged: the gates roll it back (3), blocked;
   reverted with a good change on top: applied (0);
5. `git revert` of the good change after its rollout finished: the fast path (0);
6. a second good change while it is still rolling: the revert is pushed, the running
   apply gets SIGTERM (the workflow's concurrency cancel) and restores what it changed
   (3, the revision not blocked: not a verdict), the revert's apply finds nothing left to
   change (0; the stamps stay on the first revert, which has the same bytes);
7. every box back on the merged upgrade's bytes, `diff --exit-code` 0, `status` green.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from reconciler.testing.github import FakeGitHub
from reconciler.testing.journeys import (
    GIT_IDENTITY,
    JourneyError,
    assert_converged,
    blocked,
    cli_env,
    demo_fleet,
    incidents,
    run,
)

pytestmark = pytest.mark.timeout(420)  # ~3.5 min on a loaded 2-core runner; a safety net

MARK = "<!-- reconciler:fleet-diff -->"
PR = 12
LEAD = "lead-lee"
TEAM = "acme/agent-platform-leads"
GOOD_PROMPT = (
    "You are a customer-support agent for Acme.\n"
    "Answer from the knowledge base; say so when you do not know.\n"
    "Greet the customer by name.\n"
)
OTHER_PROMPT = (
    "You are a customer-support agent for Acme.\n"
    "Answer from the knowledge base; say so when you do not know.\n"
    "Thank the customer at the end.\n"
)
VERBOSE_PROMPT = (
    "  max_tokens: 3072\n  prompt: |\n    You are a customer-support agent for Acme.\n"
    "    Think step by step and explain every detail of your answer.\n"
)  # output tokens per task x6: the gates fail it


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise JourneyError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def edit(clone: Path, path: str, old: str, new: str, message: str) -> str:
    file = clone / path
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    git(clone, "commit", "-qam", message)
    return git(clone, "rev-parse", "HEAD")


def set_prompt(clone: Path, prompt: str, message: str) -> str:
    """Set tier fast's prompt (a literal block) and commit."""
    file = clone / "agents" / "tier-fast.yaml"
    text = file.read_text(encoding="utf-8")
    block = "  prompt: |\n" + "".join(f"    {line}\n" for line in prompt.splitlines())
    new, n = re.subn(r"^  prompt: [|>][^\n]*\n(?:    [^\n]*\n|\n)*", block, text, flags=re.M)
    if n == 0:
        new = text.replace("  max_tokens: 512\n", "  max_tokens: 512\n" + block, 1)
    assert new != text
    file.write_text(new, encoding="utf-8")
    git(clone, "commit", "-qam", message)
    return git(clone, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("loop") / "demo", 4) as fleet:
        fleet.wait_alive()
        yield fleet


@pytest.fixture
def github(tmp_path):
    with FakeGitHub("acme/fleet-config") as fake:
        yield fake


def test_gitops_loop(demo, github: FakeGitHub, tmp_path: Path) -> None:
    first, upgrade = demo.first_commit, demo.head_commit
    fast, smart = demo.tier("fast"), demo.tier("smart")
    state = tmp_path / "state"
    summary = tmp_path / "step-summary.md"
    gh_env = {**cli_env(), **github.env(GITHUB_STEP_SUMMARY=str(summary))}

    # -- origin holds main at the seeded commit; the upgrade is a pull request's branch
    runner = demo.repo
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(runner), str(origin))
    git(origin, "update-ref", "refs/heads/main", first)
    git(origin, "symbolic-ref", "HEAD", "refs/heads/main")
    git(runner, "checkout", "-q", "-B", "main", first)
    git(runner, "remote", "add", "origin", str(origin))
    git(runner, "fetch", "-q", "origin")
    git(runner, "branch", "-q", "-u", "origin/main")
    dev, ci = tmp_path / "dev", tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    git(tmp_path, "clone", "-q", str(origin), str(ci))

    def pr_job(head: str) -> tuple[int, str]:
        """The pull-request workflow: validate (annotations), diff, sticky comment."""
        git(ci, "fetch", "-q", "origin")
        git(ci, "checkout", "-q", "--detach", head)
        checked = run("validate", "--repo", ci, "--format", "github", env=gh_env)
        body = tmp_path / "diff.md"
        if checked.rc == 0:
            diff = run("diff", "--repo", ci, "--base", "origin/main", "--head", head,
                       "--format", "markdown", env=gh_env)  # fmt: skip
            diff.expect(0)
            body.write_text(diff.stdout, encoding="utf-8")
        else:  # the workflow's diff step is skipped; the comment says why
            body.write_text("**The config is invalid:** see the check's annotations.\n")
        run("pr", "comment", "--pr", str(PR), "--body-file", body, "--summary",
            env=gh_env).expect(0, r"(created|updated) comment")  # fmt: skip
        return checked.rc, checked.stdout

    def review(head: str) -> object:
        return run("review", "--repo", ci, "--base", "origin/main", "--head", head,
                   "--pr", str(PR), env=gh_env)  # fmt: skip

    def merge_and_pull(sha: str | None = None) -> str:
        """Push dev's main (or merge `sha` into it), and the runner pulls it."""
        if sha is not None:
            git(dev, "checkout", "-q", "main")
            git(dev, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{PR}", sha)
        git(dev, "push", "-q", "origin", "main")
        git(runner, "pull", "-q", "--ff-only")
        head = git(runner, "rev-parse", "HEAD")
        assert head == git(dev, "rev-parse", "HEAD")
        return head

    def apply(*extra: str, rc: int) -> object:
        return (
            demo.reconcile(
                "apply", "--yes", "--format", "json", "--state-dir", state, *extra, timeout=120
            )
            .expect(rc)
            .refuse(r"Traceback")
        )

    # -- 1. the pull request: three pushes, one comment ------------------------------------
    git(dev, "fetch", "-q", "origin", upgrade)
    git(dev, "checkout", "-q", "-b", "upgrade", upgrade)
    git(dev, "push", "-q", "origin", "upgrade")
    github.open_pull(PR, upgrade)
    rc, _ = pr_job(upgrade)
    assert rc == 0
    github.add_review(PR, LEAD, "APPROVED")  # on the first push: stale after the next ones

    broken = edit(dev, "agents/tier-fast.yaml", "  max_tokens: 512\n", "  max_tokens: lots\n",
                  "tier fast: oops")  # fmt: skip
    git(dev, "push", "-q", "origin", "upgrade")
    github.open_pull(PR, broken)
    rc, annotations = pr_job(broken)
    assert rc == 1
    assert re.search(
        r"^::error file=agents/tier-fast\.yaml,line=\d+,col=\d+,title=payload\.schema::.*lots",
        annotations, re.M,
    ), annotations  # fmt: skip

    fixed = git(dev, "revert", "--no-edit", "HEAD") and git(dev, "rev-parse", "HEAD")
    git(dev, "push", "-q", "origin", "upgrade")
    github.open_pull(PR, fixed)
    assert pr_job(fixed)[0] == 0
    marked = [c for c in github.comments(PR) if MARK in c["body"]]
    assert len(github.comments(PR)) == 1 and len(marked) == 1, github.comments(PR)
    body = marked[0]["body"]
    assert "claude-haiku-4 → claude-haiku-4-5" in body and "agent-platform-leads" in body
    assert all(a in body for a in fast) and not any(a in body for a in smart)
    assert summary.read_text(encoding="utf-8").count("### Fleet diff") == 2

    # -- 2. review: refused without an approval on the head, passed with it -----------------
    refused = review(fixed).expect(1, r"cost-impacting", r"@acme/agent-platform-leads")
    refused.expect(1, r"older commit", r"CODEOWNERS")
    github.state.teams_readable = True  # a token with read:org
    github.state.teams[TEAM] = {LEAD}
    github.add_review(PR, LEAD, "APPROVED")
    review(fixed).expect(0, rf"approved by @{LEAD} \(member of @{TEAM}\)")

    # -- 3. merged: the rollout on main ------------------------------------------------------
    merged = merge_and_pull(fixed)
    apply(rc=0)
    on_merged = assert_converged(demo, merged, agents=fast, others=first, outcome="applied")

    # -- 4. a bad change: rolled back by the gates; reverted with a good change on top -------
    edit(dev, "agents/tier-fast.yaml", "  max_tokens: 512\n", VERBOSE_PROMPT, "fast: verbose")
    bad = merge_and_pull()
    apply(rc=3).expect(3, r"gates\.failed", r"rollback\.started")
    after_bad = assert_converged(demo, merged, agents=fast, others=first)
    assert all(after_bad[a].file_sha == on_merged[a].file_sha for a in demo.agents)
    assert bad in blocked(after_bad).values()
    assert len(incidents(state)) == 1
    git(dev, "revert", "--no-edit", "HEAD")
    set_prompt(dev, GOOD_PROMPT, "fast: greet by name")
    good = merge_and_pull()
    apply(rc=0).refuse(r"rollback\.started")
    on_good = assert_converged(demo, good, agents=fast, others=first, outcome="applied")

    # -- 5. git revert after the rollout finished: the fast path ----------------------------
    git(dev, "revert", "--no-edit", "HEAD")
    revert1 = merge_and_pull()
    fast_path = apply(rc=0).expect(0, r"restore")
    assert "gates.waiting" not in fast_path.kinds()
    reverted = assert_converged(demo, revert1, agents=fast, others=first, outcome="applied")
    for a in fast:
        assert reverted[a].file_sha == on_merged[a].file_sha != on_good[a].file_sha, a

    # -- 6. git revert while the rollout is still rolling: the newer run cancels it ---------
    set_prompt(dev, OTHER_PROMPT, "fast: thank the customer")
    other = merge_and_pull()
    with demo.background("apply", "--yes", "--format", "json", "--state-dir", state) as rolling:
        rolling.wait_for("soak.tick", timeout=90)  # the canary holds the change, soaking
        git(dev, "revert", "--no-edit", "HEAD")
        git(dev, "push", "-q", "origin", "main")  # the push that starts the newer run
        rolling.send(signal.SIGTERM)  # its concurrency group cancels the running one
        cancelled = rolling.finish(timeout=90)
    cancelled.expect(3, r"interrupted by SIGTERM", r"box\.restored").refuse(r"Traceback")
    revert2 = merge_and_pull()
    git(runner, "diff", "--quiet", revert1, revert2)  # the same config as the first revert
    # the cancelled run put back what it changed: the plan has no box
    apply(rc=0).expect(0, r'"event": "plan"', r'"waves": \[\], "boxes": \[\]')
    final = assert_converged(demo, revert1, agents=fast, others=first)  # revert1's stamps
    for a in demo.agents:
        assert final[a].file_sha == on_merged[a].file_sha, f"{a} not on the merged bytes"
    assert other not in blocked(final).values(), "a cancelled rollout blocked its revision"

    # -- 7. the old revision, green -------------------------------------------------------
    demo.reconcile("diff", "--exit-code").expect(0)
    demo.reconcile("status", "--all", "--window", "2").expect(0, *demo.agents)
