"""PR comment: one sticky comment per pull request, found by its hidden marker, updated in place.

The body (the fleet diff as markdown, `reconcile diff --format markdown`) gets the marker
`<!-- reconciler:NAME -->` as its first line here (the diff itself does not print it).
The pull request's comments are listed page by page; the first that carries the marker
is edited (PATCH), else one is created (POST): three pushes leave one comment. With
`summary` the body is also appended to the job summary file (`$GITHUB_STEP_SUMMARY`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx

from reconciler.errors import Refused
from reconciler.github import GitHub, GitHubError, env_from
from reconciler.report.markers import FLEET_DIFF, find_marked, marker, with_marker
from reconciler.secrets.redact import REDACTOR

COMMENT_LIMIT: Final = 65_536  # GitHub refuses a longer comment body


@dataclass(frozen=True, slots=True)
class PrCommentRequest:
    pr: int
    body_file: Path
    marker: str = FLEET_DIFF
    summary: bool = False


@dataclass(frozen=True, slots=True)
class PrCommentResult:
    action: Literal["created", "updated"]
    comment_id: int
    url: str | None
    summary: Path | None  # the step summary file written, if any
    summary_missing: bool = False  # --summary asked but $GITHUB_STEP_SUMMARY is not set


def read_body(path: Path, what: str = "--body-file") -> str:
    """A body file's text (secret values scrubbed); Refused naming the file when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"{what} {path}: cannot read it: {exc}") from None
    return REDACTOR.scrub(text)


def append_summary(environ: Mapping[str, str], body: str) -> Path | None:
    """Append `body` to $GITHUB_STEP_SUMMARY; None when it is not set."""
    name = environ.get("GITHUB_STEP_SUMMARY")
    if not name:
        return None
    path = Path(name)
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(body if body.endswith("\n") else body + "\n")
    except OSError as exc:
        raise Refused(f"GITHUB_STEP_SUMMARY {path}: cannot append to it: {exc}") from None
    return path


def _update(gh: GitHub, found: Mapping[str, Any], body: str) -> dict[str, Any] | None:
    """PATCH the marked comment; None when it is a person's our token may not edit (403)."""
    cid = found.get("id")
    if not isinstance(cid, int):
        return None
    try:
        return gh.update_comment(cid, body)
    except GitHubError as exc:
        user = found.get("user")
        bot = isinstance(user, Mapping) and user.get("type") == "Bot"
        if exc.status == 403 and not bot:  # someone copied the marker: post our own
            return None
        raise


def post_comment(
    req: PrCommentRequest,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> PrCommentResult:
    """Create or update the pull request's marked comment (see the module docstring)."""
    if req.pr < 1:
        raise Refused(f"--pr {req.pr}: a pull request number is 1 or more")
    marker(req.marker)  # a bad name is refused before any call
    text = read_body(req.body_file)
    body = with_marker(text, req.marker)
    if len(body) > COMMENT_LIMIT:
        raise Refused(
            f"--body-file {req.body_file}: {len(body):,} characters with the marker, over "
            f"GitHub's {COMMENT_LIMIT:,}; `reconcile diff --format markdown` keeps under it"
        )
    env = env_from(environ)
    with GitHub(env, transport=transport) as gh:
        found = find_marked(gh.comments(req.pr), req.marker)
        doc = _update(gh, found, body) if found is not None else None
        action: Literal["created", "updated"] = "updated"
        if doc is None:
            doc = gh.create_comment(req.pr, body)
            action = "created"
    summary = append_summary(environ, text) if req.summary else None
    url = doc.get("html_url")
    return PrCommentResult(
        action,
        int(doc.get("id") or 0),
        url if isinstance(url, str) else None,
        summary,
        summary_missing=req.summary and summary is None,
    )
