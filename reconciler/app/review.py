"""Review: does a pull request have the approvals its change needs under the base's rules?

The change is the PR-mode fleet diff of `base`..`head` (git objects only, no fleet
contact); the rules are the BASE revision's `fleet.review` (reconciler/diff/review.py
says which reviews count). GitHub is called only when a rule applies: the pull
request (its current head commit), its reviews, and for team approvers the team
membership of each approving reviewer (which the default token cannot read: the
verdict then says so and points to CODEOWNERS).

`codeowners` writes the CODEOWNERS file that maps the same rules to paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from reconciler.app.config import load_config
from reconciler.app.diff import load_revision
from reconciler.app.validate import git_root_prefix
from reconciler.diff import diff_repos
from reconciler.diff.review import (
    Membership,
    Verdict,
    approvals,
    codeowners,
    judge,
    requirements,
    stale_approvals,
    teams_to_check,
)
from reconciler.errors import Refused
from reconciler.github import GitHub, env_from
from reconciler.repo import GitError, read_revision


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    repo: Path
    base: str
    head: str
    pr: int


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """Each requirement judged, the rules' revision, and the reviews that were seen."""

    verdicts: tuple[Verdict, ...]
    rules_from: str
    head_sha: str
    approved: frozenset[str] = frozenset()
    stale: frozenset[str] = frozenset()  # approvals on an older commit (not counted)

    @property
    def satisfied(self) -> bool:
        return all(v.satisfied for v in self.verdicts)


def _sha(repo: Path, rev: str) -> str:
    try:
        return read_revision(repo, rev).sha
    except GitError as exc:
        raise Refused(f"--head: {exc}") from None


def review(
    req: ReviewRequest,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> ReviewResult:
    """Judge the pull request's reviews against the base's rules (see the module docstring)."""
    if req.pr < 1:
        raise Refused(f"--pr {req.pr}: a pull request number is 1 or more")
    base_repo, base_label = load_revision(req.repo, req.base, "base")
    head_repo, head_label = load_revision(req.repo, req.head, "head")
    diff = diff_repos(base_repo, head_repo, base_label=base_label, head_label=head_label)
    reqs = requirements(diff)
    head_sha = _sha(req.repo, req.head)
    if not reqs or all(not r.approvers for r in reqs):  # nothing to ask GitHub
        return ReviewResult(
            tuple(judge(r, set(), Membership()) for r in reqs), diff.rules_from, head_sha
        )
    with GitHub(env_from(environ), transport=transport) as gh:
        pull = gh.pull(req.pr)
        head = pull.get("head")
        pr_sha = head.get("sha") if isinstance(head, dict) else None
        if pr_sha != head_sha:
            raise Refused(
                f"pull request #{req.pr}'s head is {str(pr_sha)[:12]}, not --head {req.head} "
                f"({head_sha[:12]}): it moved since this job started; the check of its new "
                "head decides (pass --head ${{ github.event.pull_request.head.sha }})"
            )
        reviews = list(gh.reviews(req.pr))
        approved = approvals(reviews, head_sha)
        verdicts = [judge(r, approved, Membership()) for r in reqs]
        teams = teams_to_check([v.requirement for v in verdicts if not v.satisfied])
        members: dict[str, frozenset[str]] = {}
        unreadable: set[str] = set()
        for team in teams:
            found = set()
            for user in sorted(approved):
                answer = gh.team_membership(team, user)
                if answer is None:
                    unreadable.add(team)
                elif answer:
                    found.add(user)
            members[team] = frozenset(found)
            if not approved:
                unreadable.add(team)  # nobody to look up: say how teams are enforced
    membership = Membership(members, frozenset(unreadable))
    return ReviewResult(
        tuple(judge(r, approved, membership) for r in reqs),
        diff.rules_from,
        head_sha,
        frozenset(approved),
        frozenset(stale_approvals(reviews, head_sha)),
    )


def write_codeowners(repo: Path, rev: str | None, out: Path | None) -> tuple[str, Path | None]:
    """The CODEOWNERS text for the review rules of `rev` (default: the work tree's fleet.yaml)
    and where it was written (None: not written, print it)."""
    if rev is None:
        rules = load_config(repo).fleet.review
    else:
        rules = load_revision(repo, rev, "base")[0].fleet.review
    text = codeowners(rules, git_root_prefix(repo))
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise Refused(f"--out {out}: cannot write it: {exc}") from None
    return text, out
