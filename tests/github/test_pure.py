"""The pure parts: annotation escaping, hidden markers, which reviews count, CODEOWNERS."""

from __future__ import annotations

import pytest

from reconciler.diff.review import (
    Membership,
    Requirement,
    approvals,
    codeowners,
    judge,
    stale_approvals,
)
from reconciler.errors import Refused
from reconciler.model.fleet import Review
from reconciler.report.annotations import error_line, escape_data, escape_property
from reconciler.report.markers import carries, find_marked, marker, with_marker


def test_annotation_escapes_as_the_runner_unescapes() -> None:
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    line = error_line("dir,x/fleet.yaml", 3, 0, "schema.type", "bad: 5%\nnext")
    assert (
        line == "::error file=dir%2Cx/fleet.yaml,line=3,col=1,title=schema.type::bad: 5%25%0Anext"
    )


def test_marker_added_once_and_found_first() -> None:
    body = with_marker("hello", "fleet-diff")
    assert body.splitlines()[0] == "<!-- reconciler:fleet-diff -->"
    assert with_marker(body, "fleet-diff") == body
    items = [{"id": 1, "body": "no"}, {"id": 2, "body": body}, {"id": 3, "body": body}]
    assert find_marked(items, "fleet-diff") == items[1]
    assert find_marked(items, "drift") is None
    assert not carries("text <!-- reconciler:fleet-diff --> inline", "fleet-diff")
    with pytest.raises(Refused, match="--marker"):
        marker("Bad Name -->")


def _r(login: str, state: str, sha: str) -> dict[str, object]:
    return {"user": {"login": login}, "state": state, "commit_id": sha}


def test_latest_decisive_review_counts_and_only_on_the_head() -> None:
    reviews = [
        _r("alice", "APPROVED", "h"),
        _r("alice", "COMMENTED", "h"),  # a comment does not undo an approval
        _r("bob", "APPROVED", "h"),
        _r("bob", "CHANGES_REQUESTED", "h"),  # the latest decisive one counts
        _r("carol", "APPROVED", "old"),  # given before the last push
        _r("dave", "APPROVED", "h"),
        _r("dave", "DISMISSED", "h"),
    ]
    assert approvals(reviews, "h") == {"alice"}
    assert stale_approvals(reviews, "h") == {"carol"}


def test_judge_users_teams_and_empty_rules() -> None:
    req = Requirement("cost-impacting", "1 agent", ("@Alice", "@acme/leads"))
    assert judge(req, {"alice"}, Membership()).approved_by == "@alice"
    nobody = judge(req, {"zed"}, Membership(unreadable=frozenset({"acme/leads"})))
    assert not nobody.satisfied
    line = nobody.line("base abc")
    assert "@Alice, @acme/leads" in line and "CODEOWNERS" in line and "read:org" in line
    member = judge(req, {"zed"}, Membership({"acme/leads": frozenset({"zed"})}))
    assert member.satisfied and "member of @acme/leads" in (member.approved_by or "")
    assert judge(Requirement("access", "x", ()), set(), Membership()).satisfied


def test_codeowners_maps_rules_to_paths() -> None:
    text = codeowners(
        Review(cost_impacting_approvers=["@acme/leads", "alice"], access_approvers=["@sec"]),
        "fleet/",
    )
    lines = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.startswith("/")}
    assert lines["/fleet/agents/"] == ["@acme/leads", "@alice"]
    assert lines["/fleet/shards/"] == ["@acme/leads", "@alice", "@sec"]
    assert lines["/fleet/fleet.yaml"] == ["@sec"]
    assert lines["/.github/"] == ["@sec"]
