"""A fake GitHub REST API on 127.0.0.1: the subset reconciler's CI commands call.

A real HTTP server (stdlib `http.server`, one thread per request) that answers as
GitHub does, JSON shapes included, for one repository:

- GET/POST /repos/{o}/{r}/issues/{n}/comments, PATCH /repos/{o}/{r}/issues/comments/{id}
  (lists paginated with `per_page`/`page` and a `Link` header with rel="next"/"last");
- GET /repos/{o}/{r}/pulls/{n} (head.sha), GET /repos/{o}/{r}/pulls/{n}/reviews;
- GET /repos/{o}/{r}/issues (state, labels filters; pull requests listed too, as GitHub
  does, with a `pull_request` key), POST /repos/{o}/{r}/issues, PATCH /repos/{o}/{r}/issues/{n};
- GET /orgs/{org}/teams/{slug}/memberships/{user}: 200 {"state": "active"} for members
  when `teams_readable`, else 403 "Resource not accessible by integration" (the default
  workflow token).

Every request must carry `Authorization: Bearer TOKEN` (or `token TOKEN`): otherwise 401
{"message": "Bad credentials"}. Tests set the state (`open_pull`, `add_review`, `users`)
and read it back (`comments`, `issues`, `requests`). Use it as a context manager: the
server stops at the end of the block.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

DEFAULT_PER_PAGE: Final = 30
MAX_PER_PAGE: Final = 100
TOKEN: Final = "ghs_fakeTokenForTests0123456789"  # noqa: S105 (a test token)
BOT: Final = "github-actions[bot]"


def _user(login: str) -> dict[str, Any]:
    kind = "Bot" if login.endswith("[bot]") else "User"
    return {"login": login, "id": abs(hash(login)) % 10_000_000, "type": kind}


@dataclass
class Request:
    """One request the server answered: method, path (no query), query, status."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class State:
    """The repository as GitHub holds it; guarded by `lock`."""

    repo: str
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by issue number
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by pull number
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # plain issues, by number
    teams: dict[str, set[str]] = field(default_factory=dict)  # "org/slug" -> logins
    teams_readable: bool = False
    next_id: int = 1000
    next_number: int = 1
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGitHub:
    """The server: `url` is GITHUB_API_URL, `env()` the variables a workflow job sets."""

    def __init__(self, repo: str = "acme/fleet-config", token: str = TOKEN) -> None:
        self.token = token
        self.state = State(repo)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self, **extra: str) -> dict[str, str]:
        """GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_TOKEN for this server (plus `extra`)."""
        return {
            "GITHUB_REPOSITORY": self.state.repo,
            "GITHUB_API_URL": self.url,
            "GITHUB_TOKEN": self.token,
            **extra,
        }

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- setting the scene -------------------------------------------------------------------

    def open_pull(self, number: int, head_sha: str, author: str = "dev") -> None:
        """A pull request #number at head_sha (a new head: push to it again with this)."""
        with self.state.lock:
            pull = self.state.pulls.setdefault(number, {"number": number, "state": "open"})
            pull.update(head={"sha": head_sha, "ref": f"pr-{number}"}, user=_user(author))
            self.state.comments.setdefault(number, [])
            self.state.reviews.setdefault(number, [])

    def add_review(self, number: int, login: str, state: str, commit_id: str | None = None) -> None:
        """A review by `login` (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED) on a commit
        (default: the pull request's current head)."""
        with self.state.lock:
            pull = self.state.pulls[number]
            self.state.reviews[number].append(
                {
                    "id": self.state.new_id(),
                    "user": _user(login),
                    "body": "",
                    "state": state,
                    "commit_id": commit_id or pull["head"]["sha"],
                    "submitted_at": "2026-01-01T00:00:00Z",
                }
            )

    def add_comment(self, number: int, body: str, login: str = "someone") -> int:
        with self.state.lock:
            self.state.comments.setdefault(number, [])
            return self._comment(number, body, login)["id"]  # type: ignore[no-any-return]

    def _comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        cid = self.state.new_id()
        doc = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": body,
            "user": _user(login),
            "html_url": f"https://github.com/{self.state.repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.url}/repos/{self.state.repo}/issues/{number}",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
        self.state.comments[number].append(doc)
        return doc

    # -- reading it back ---------------------------------------------------------------------

    def comments(self, number: int) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(c) for c in self.state.comments.get(number, [])]

    def issues(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(i) for i in self.state.issues.values()]

    def requests(self, method: str | None = None) -> list[Request]:
        with self.state.lock:
            return [r for r in self.state.requests if method is None or r.method == method]


_R: Final = r"^/repos/(?P<repo>[^/]+/[^/]+)"
_ROUTES: Final[list[tuple[str, re.Pattern[str], str]]] = [
    ("GET", re.compile(_R + r"/issues/(?P<n>\d+)/comments$"), "list_comments"),
    ("POST", re.compile(_R + r"/issues/(?P<n>\d+)/comments$"), "create_comment"),
    ("PATCH", re.compile(_R + r"/issues/comments/(?P<id>\d+)$"), "update_comment"),
    ("GET", re.compile(_R + r"/pulls/(?P<n>\d+)$"), "get_pull"),
    ("GET", re.compile(_R + r"/pulls/(?P<n>\d+)/reviews$"), "list_reviews"),
    ("GET", re.compile(_R + r"/issues$"), "list_issues"),
    ("POST", re.compile(_R + r"/issues$"), "create_issue"),
    ("PATCH", re.compile(_R + r"/issues/(?P<n>\d+)$"), "update_issue"),
    ("GET", re.compile(r"^/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<user>[^/]+)$"),
     "membership"),
]  # fmt: skip


class _Answer(Exception):
    def __init__(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.doc, self.headers = status, doc, headers or {}


def _not_found() -> _Answer:
    return _Answer(
        404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
    )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, doc, headers = self._route(method, parts.path, query, raw)
        except _Answer as a:
            status, doc, headers = a.status, a.doc, a.headers
        state = self.fake.state
        with state.lock:
            state.requests.append(Request(method, parts.path, query, status))
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        auth = self.headers.get("Authorization", "")
        if auth not in (f"Bearer {self.fake.token}", f"token {self.fake.token}"):
            raise _Answer(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        for m, pattern, name in _ROUTES:
            found = pattern.match(path)
            if found and m == method:
                args = found.groupdict()
                if "repo" in args and args.pop("repo") != self.fake.state.repo:
                    raise _not_found()
                body: Any = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Answer(400, {"message": "Problems parsing JSON"}) from None
                with self.fake.state.lock:
                    result: tuple[int, Any, dict[str, str]] = getattr(self, name)(
                        query=query, body=body, path=path, **args
                    )
                    return result
        raise _not_found()

    # -- pagination ------------------------------------------------------------------------

    def _page(
        self, items: list[dict[str, Any]], query: dict[str, str], path: str
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            per = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise _Answer(422, {"message": "Validation Failed"}) from None
        last = max((len(items) + per - 1) // per, 1)
        chunk = items[(page - 1) * per : page * per]
        links = []
        base = f"{self.fake.url}{path}"

        def link(p: int, rel: str) -> str:
            return f'<{base}?{urlencode({**query, "per_page": per, "page": p})}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return 200, [dict(i) for i in chunk], ({"Link": ", ".join(links)} if links else {})

    # -- endpoints (called with the state lock held) ------------------------------------------

    def _issue_exists(self, n: int) -> bool:
        s = self.fake.state
        return n in s.pulls or n in s.issues

    def list_comments(
        self, n: str, query: dict[str, str], path: str, **_: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if not self._issue_exists(int(n)):
            raise _not_found()
        return self._page(self.fake.state.comments.get(int(n), []), query, path)

    def create_comment(self, n: str, body: Any, **_: Any) -> tuple[int, Any, dict[str, str]]:
        if not self._issue_exists(int(n)):
            raise _not_found()
        text = _body_field(body)
        self.fake.state.comments.setdefault(int(n), [])
        return 201, self.fake._comment(int(n), text, BOT), {}

    def update_comment(self, id: str, body: Any, **_: Any) -> tuple[int, Any, dict[str, str]]:
        text = _body_field(body)
        for comments in self.fake.state.comments.values():
            for c in comments:
                if c["id"] == int(id):
                    if c["user"]["login"] != BOT:
                        raise _Answer(403, {"message": "Resource not accessible by integration"})
                    c["body"] = text
                    c["updated_at"] = "2026-01-01T00:01:00Z"
                    return 200, dict(c), {}
        raise _not_found()

    def get_pull(self, n: str, **_: Any) -> tuple[int, Any, dict[str, str]]:
        pull = self.fake.state.pulls.get(int(n))
        if pull is None:
            raise _not_found()
        return 200, dict(pull), {}

    def list_reviews(
        self, n: str, query: dict[str, str], path: str, **_: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if int(n) not in self.fake.state.pulls:
            raise _not_found()
        return self._page(self.fake.state.reviews.get(int(n), []), query, path)

    def list_issues(
        self, query: dict[str, str], path: str, **_: Any
    ) -> tuple[int, Any, dict[str, str]]:
        s = self.fake.state
        want_state = query.get("state", "open")
        labels = {lb for lb in query.get("labels", "").split(",") if lb}
        items: list[dict[str, Any]] = []
        for num in sorted({*s.issues, *s.pulls}, reverse=True):  # newest first, as GitHub
            if num in s.pulls:
                p = s.pulls[num]
                doc = {"number": num, "state": p["state"], "title": f"PR {num}", "body": "",
                       "labels": [], "pull_request": {"url": f"/pulls/{num}"}}  # fmt: skip
            else:
                doc = s.issues[num]
            if want_state != "all" and doc["state"] != want_state:
                continue
            if labels - {lb["name"] for lb in doc["labels"]}:
                continue
            items.append(doc)
        return self._page(items, query, path)

    def create_issue(self, body: Any, **_: Any) -> tuple[int, Any, dict[str, str]]:
        s = self.fake.state
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            raise _Answer(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"field": "title", "code": "missing_field"}],
                },
            )
        number = max([0, *s.issues, *s.pulls]) + 1
        doc = {
            "id": s.new_id(),
            "number": number,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "state_reason": None,
            "labels": [{"name": str(n)} for n in body.get("labels") or []],
            "user": _user(BOT),
            "html_url": f"https://github.com/{s.repo}/issues/{number}",
        }
        s.issues[number] = doc
        s.comments.setdefault(number, [])
        return 201, dict(doc), {}

    def update_issue(self, n: str, body: Any, **_: Any) -> tuple[int, Any, dict[str, str]]:
        doc = self.fake.state.issues.get(int(n))
        if doc is None or not isinstance(body, dict):
            raise _not_found()
        for key in ("title", "body", "state", "state_reason"):
            if key in body:
                doc[key] = body[key]
        if "labels" in body:
            doc["labels"] = [{"name": str(x)} for x in body["labels"]]
        return 200, dict(doc), {}

    def membership(
        self, org: str, team: str, user: str, **_: Any
    ) -> tuple[int, Any, dict[str, str]]:
        s = self.fake.state
        if not s.teams_readable:
            raise _Answer(403, {"message": "Resource not accessible by integration"})
        if user.lower() in {u.lower() for u in s.teams.get(f"{org}/{team}".lower(), set())}:
            return 200, {"state": "active", "role": "member"}, {}
        raise _not_found()


def _body_field(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("body"), str):
        raise _Answer(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"field": "body", "code": "missing_field"}],
            },
        )
    text: str = body["body"]
    if len(text) > 65_536:
        raise _Answer(
            422,
            {
                "message": "Validation Failed",
                "errors": [
                    {
                        "field": "body",
                        "code": "custom",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ],
            },
        )
    return text


def pages(items: list[Any], per: int) -> Iterator[list[Any]]:
    """`items` cut as the server pages them (for tests that count requests)."""
    for i in range(0, len(items), per):
        yield items[i : i + per]
