"""A synchronous httpx client for the few GitHub REST endpoints reconciler calls.

Lists follow the `Link: <…>; rel="next"` header page by page (100 a page), as the
API documents; every error is a `GitHubError` naming the operation and the HTTP
status, never the token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from reconciler.errors import Refused
from reconciler.secrets.redact import REDACTOR

DEFAULT_API: Final = "https://api.github.com"
PER_PAGE: Final = 100
MAX_PAGES: Final = 100  # 10,000 items: a backstop against a Link loop
TIMEOUT_S: Final = 30.0
_NEXT: Final = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_REPO: Final = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(Refused):
    """A GitHub API call failed: which operation, the status, GitHub's message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class GitHubEnv:
    """Where to call: the repository, the API base URL, and the token (never shown)."""

    repository: str
    api_url: str
    token: str

    def __repr__(self) -> str:
        return f"GitHubEnv({self.repository!r}, {self.api_url!r}, token=<redacted>)"


def env_from(environ: Mapping[str, str]) -> GitHubEnv:
    """The job's settings; Refused naming the variable when one is missing or malformed."""
    repository = environ.get("GITHUB_REPOSITORY", "").strip()
    if not _REPO.match(repository):
        raise Refused(
            "GITHUB_REPOSITORY is not set to OWNER/NAME"
            + (f" (it is {repository!r})" if repository else "")
            + "; GitHub Actions sets it, elsewhere export it"
        )
    token = environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise Refused(
            "GITHUB_TOKEN is not set; pass the job's token: `env: GITHUB_TOKEN: "
            "${{ secrets.GITHUB_TOKEN }}` (or ${{ github.token }})"
        )
    REDACTOR.add([token])
    api = (environ.get("GITHUB_API_URL") or DEFAULT_API).strip().rstrip("/")
    if not api.startswith(("https://", "http://")):
        raise Refused(f"GITHUB_API_URL {api!r} is not an http(s) URL")
    return GitHubEnv(repository, api, token)


class GitHub:
    """The REST calls reconciler makes, on one repository. Use it as a context manager."""

    def __init__(self, env: GitHubEnv, *, transport: httpx.BaseTransport | None = None) -> None:
        self.env = env
        self._http = httpx.Client(
            base_url=env.api_url,
            headers={
                "Authorization": f"Bearer {env.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "reconciler",
            },
            timeout=TIMEOUT_S,
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def repo(self) -> str:
        return f"/repos/{self.env.repository}"

    # -- plumbing ----------------------------------------------------------------------

    def _call(self, what: str, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise GitHubError(
                f"GitHub {what}: {type(exc).__name__}: {exc} ({self.env.api_url})"
            ) from None
        if resp.status_code >= 400:
            raise GitHubError(f"GitHub {what}: {_explain(resp)}", resp.status_code)
        return resp

    def _json(self, what: str, method: str, url: str, **kw: Any) -> Any:
        resp = self._call(what, method, url, **kw)
        try:
            return resp.json()
        except ValueError:
            raise GitHubError(f"GitHub {what}: HTTP {resp.status_code}, not JSON") from None

    def _pages(
        self, what: str, url: str, params: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following rel="next" links."""
        next_url: str | None = url
        query: dict[str, str] | None = {"per_page": str(PER_PAGE), **(params or {})}
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            resp = self._call(what, "GET", next_url, params=query)
            try:
                items = resp.json()
            except ValueError:
                raise GitHubError(f"GitHub {what}: a page that is not JSON") from None
            if not isinstance(items, list):
                raise GitHubError(
                    f"GitHub {what}: expected a JSON list, got {type(items).__name__}"
                )
            yield from (i for i in items if isinstance(i, dict))
            found = _NEXT.search(resp.headers.get("link", ""))
            next_url, query = (found.group(1), None) if found else (None, None)
        raise GitHubError(f"GitHub {what}: more than {MAX_PAGES} pages")

    # -- issue comments (a pull request is an issue) ------------------------------------------

    def comments(self, number: int) -> Iterator[dict[str, Any]]:
        return self._pages(f"list comments of #{number}", f"{self.repo}/issues/{number}/comments")

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        url = f"{self.repo}/issues/{number}/comments"
        doc: dict[str, Any] = self._json(f"comment on #{number}", "POST", url, json={"body": body})
        return doc

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        url = f"{self.repo}/issues/comments/{comment_id}"
        doc: dict[str, Any] = self._json(
            f"update comment {comment_id}", "PATCH", url, json={"body": body}
        )
        return doc

    # -- pull requests ------------------------------------------------------------------

    def pull(self, number: int) -> dict[str, Any]:
        doc: dict[str, Any] = self._json(
            f"read pull request #{number}", "GET", f"{self.repo}/pulls/{number}"
        )
        return doc

    def reviews(self, number: int) -> Iterator[dict[str, Any]]:
        return self._pages(f"list reviews of #{number}", f"{self.repo}/pulls/{number}/reviews")

    def team_membership(self, team: str, user: str) -> bool | None:
        """Whether `user` is an active member of `org/team`; None when it cannot be read."""
        org, _, slug = team.partition("/")
        url = f"/orgs/{org}/teams/{slug}/memberships/{user}"
        try:
            resp = self._http.get(url)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        try:
            doc = resp.json()
        except ValueError:
            return None
        return (
            isinstance(doc, dict) and doc.get("state") == "active"
        )  # 404 (not a member, or a team the token cannot see), 401, 403

    # -- issues -------------------------------------------------------------------------

    def open_issues(self, label: str) -> Iterator[dict[str, Any]]:
        """Open issues carrying `label` (pull requests, which the API lists too, left out)."""
        items = self._pages(
            f"list open issues labelled {label}",
            f"{self.repo}/issues",
            {"state": "open", "labels": label},
        )
        return (i for i in items if "pull_request" not in i)

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        doc: dict[str, Any] = self._json(
            "open an issue", "POST", f"{self.repo}/issues",
            json={"title": title, "body": body, "labels": labels},
        )  # fmt: skip
        return doc

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = self._json(
            f"update issue #{number}", "PATCH", f"{self.repo}/issues/{number}", json=fields
        )
        return doc


def _explain(resp: httpx.Response) -> str:
    """The status and GitHub's own message (its JSON `message`), what to do for the usual ones."""
    message = ""
    try:
        doc = resp.json()
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            message = doc["message"][:300]
    except ValueError:
        message = resp.text[:200]
    hint = {
        401: "the token is missing, expired or wrong (GITHUB_TOKEN)",
        403: "the token lacks a permission (the job's `permissions:`: pull-requests: write, "
        "issues: write) or a rate limit was hit",
        404: "no such repository, pull request or issue, or the token cannot see it",
    }.get(resp.status_code, "")
    parts = [f"HTTP {resp.status_code}"]
    if message:
        parts.append(message)
    if hint:
        parts.append(hint)
    return "; ".join(parts)
