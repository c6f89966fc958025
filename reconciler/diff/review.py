"""Review rules: which approvals a change needs, and whether a pull request's reviews give them.

The rules are the base revision's `fleet.review` (a pull request cannot weaken the check
it is judged by; `FleetDiff.rules_from`): a cost-impacting change needs an approval from
one of `cost_impacting_approvers`, an [access] change one from `access_approvers`. One
approver of a list is enough, as with CODEOWNERS. An approver is a user (`@alice`) or a
team (`@org/team`); logins compare case-insensitively, with or without the `@`.

Which reviews count (GitHub's own rule for a pull request's review decision, with stale
approvals dismissed): per reviewer only the latest APPROVED, CHANGES_REQUESTED or
DISMISSED review counts (COMMENTED and PENDING ones do not change it), and an APPROVED
review counts only when it was given on the pull request's current head commit: a push
after an approval needs a new approval.

Team membership needs a token that can read the organisation's teams (`read:org`),
which a workflow's default token cannot. A team approver whose membership could not be
read is reported as such, pointing to CODEOWNERS (`reconcile review --codeowners`) and
branch protection's required code-owner review as the enforcing path. Pure: the diff,
the reviews and what membership lookups found in; the verdicts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from reconciler.diff.model import FleetDiff
from reconciler.diff.summary import summarise
from reconciler.model.fleet import Review

Kind = Literal["cost-impacting", "access"]
RULE_FIELD: Final[dict[str, str]] = {
    "cost-impacting": "fleet.review.cost_impacting_approvers",
    "access": "fleet.review.access_approvers",
}
_DECISIVE: Final = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


def login(name: str) -> str:
    """A user or team as compared: no leading `@`, lower case."""
    return name.strip().lstrip("@").lower()


def is_team(name: str) -> bool:
    return "/" in login(name)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One approval a change needs: what changes, and who may approve it."""

    kind: Kind
    what: str  # e.g. "3 agents with cost-impacting changes"
    approvers: tuple[str, ...]


def requirements(diff: FleetDiff) -> list[Requirement]:
    """The approvals the diff needs under the rules of its `rules_from` side."""
    s = summarise(diff)
    out: list[Requirement] = []
    if s.cost_impacting:
        n = s.cost_impacting
        out.append(
            Requirement(
                "cost-impacting",
                f"{n} agent{'s' if n != 1 else ''} with cost-impacting changes",
                diff.approvers,
            )
        )
    if s.access or s.fleet_access:
        parts = []
        if s.access:
            parts.append(f"{s.access} agent{'s' if s.access != 1 else ''}")
        if s.fleet_access:
            parts.append(f"{s.fleet_access} fleet-wide setting{'s' if s.fleet_access != 1 else ''}")
        out.append(
            Requirement(
                "access", f"[access] changes on {' and '.join(parts)}", diff.access_approvers
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ReviewState:
    """A reviewer's standing review: its state and the commit it was given on."""

    user: str
    state: str
    commit_id: str | None


def standing_reviews(reviews: Iterable[Mapping[str, Any]]) -> dict[str, ReviewState]:
    """Each reviewer's latest decisive review, from the API's list (oldest first)."""
    out: dict[str, ReviewState] = {}
    for r in reviews:
        user = r.get("user")
        name = user.get("login") if isinstance(user, Mapping) else None
        state = str(r.get("state") or "").upper()
        if not isinstance(name, str) or state not in _DECISIVE:
            continue
        commit = r.get("commit_id")
        out[login(name)] = ReviewState(name, state, commit if isinstance(commit, str) else None)
    return out


def approvals(reviews: Iterable[Mapping[str, Any]], head_sha: str) -> set[str]:
    """Logins whose standing review is APPROVED on the head commit."""
    return {
        who
        for who, r in standing_reviews(reviews).items()
        if r.state == "APPROVED" and r.commit_id == head_sha
    }


def stale_approvals(reviews: Iterable[Mapping[str, Any]], head_sha: str) -> set[str]:
    """Logins whose standing review is APPROVED on an older commit (not counted)."""
    return {
        who
        for who, r in standing_reviews(reviews).items()
        if r.state == "APPROVED" and r.commit_id != head_sha
    }


@dataclass(frozen=True, slots=True)
class Membership:
    """What team lookups found: approving members per team, and teams that could not be read."""

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # team -> approvers in it
    unreadable: frozenset[str] = frozenset()  # teams whose membership the token cannot read


@dataclass(frozen=True, slots=True)
class Verdict:
    """One requirement judged: by whom it is met, or why not."""

    requirement: Requirement
    approved_by: str | None
    unreadable_teams: tuple[str, ...] = ()

    @property
    def satisfied(self) -> bool:
        return self.approved_by is not None or not self.requirement.approvers

    def line(self, rules_from: str) -> str:
        """One line for the job log: met by whom, or who must approve."""
        req = self.requirement
        rule = f"{RULE_FIELD[req.kind]} in {rules_from}"
        if not req.approvers:
            return f"ok: {req.what}: no approvers set ({rule}); nothing to enforce"
        if self.approved_by is not None:
            return f"ok: {req.what}: approved by {self.approved_by}"
        who = ", ".join(req.approvers)
        text = f"missing: {req.what} need an approval from one of {who} ({rule})"
        if self.unreadable_teams:
            text += (
                f"; membership of {', '.join(self.unreadable_teams)} could not be confirmed "
                "with this token (a workflow's default token cannot read team membership; "
                "one with read:org can): enforce team approvers with CODEOWNERS "
                "(`reconcile review --codeowners`) and branch protection's required "
                "code-owner review"
            )
        return text


def judge(req: Requirement, approved: set[str], membership: Membership) -> Verdict:
    """Whether one of the requirement's approvers approved (a user, or a member of a team)."""
    unreadable = []
    for approver in req.approvers:
        key = login(approver)
        if not is_team(approver):
            if key in approved:
                return Verdict(req, f"@{key}")
            continue
        members = membership.members.get(key, frozenset()) & approved
        if members:
            return Verdict(req, f"@{sorted(members)[0]} (member of @{key})")
        if key in membership.unreadable:
            unreadable.append(approver)
    return Verdict(req, None, tuple(unreadable))


def teams_to_check(reqs: Sequence[Requirement]) -> list[str]:
    """The team approvers of the requirements (as compared), each once."""
    return sorted({login(a) for r in reqs for a in r.approvers if is_team(a)})


# -- CODEOWNERS ---------------------------------------------------------------------------

# Where in a fleet repo each kind of change is made (a path-based approximation of the diff:
# CODEOWNERS cannot see which field changed). Later lines win in CODEOWNERS.
_COST_PATHS: Final = ("agents/", "shards/", "schemas/")
_ACCESS_PATHS: Final = ("shards/", "schemas/", "fleet.yaml", "secrets/", ".github/")


def codeowners(rules: Review, prefix: str = "") -> str:
    """A CODEOWNERS file mapping the review rules to the paths where such changes are made.

    `prefix` is the fleet repo's directory inside the git repository ("" at its root).
    A path both rules cover lists both sets of owners: CODEOWNERS is satisfied by any one
    of them, so the finer check stays `reconcile review` (which sees the field).
    """
    cost = [_owner(a) for a in rules.cost_impacting_approvers]
    access = [_owner(a) for a in rules.access_approvers]
    lines = [
        "# Generated by `reconcile review --codeowners` from fleet.yaml's review rules;",
        "# regenerate it when they change. With branch protection's \"Require review from",
        '# Code Owners" these owners must approve a pull request touching their paths.',
        "# cost-impacting (fleet.review.cost_impacting_approvers): "
        + (" ".join(cost) or "none set"),
        "# [access] (fleet.review.access_approvers): " + (" ".join(access) or "none set"),
    ]
    paths: dict[str, list[str]] = {}
    for path in _COST_PATHS:
        paths.setdefault(path, []).extend(cost)
    for path in _ACCESS_PATHS:
        paths.setdefault(path, []).extend(access)
    for path, owners in paths.items():
        unique = list(dict.fromkeys(owners))
        if unique:
            where = path if path == ".github/" else f"{prefix}{path}"  # workflows: at the root
            lines.append(f"/{where} {' '.join(unique)}")
    return "\n".join(lines) + "\n"


def _owner(name: str) -> str:
    return "@" + name.strip().lstrip("@")
