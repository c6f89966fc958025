"""Drift issue: one open issue, found by its marker, says whether the live fleet drifted.

The scheduled drift check runs `reconcile diff --exit-code` against the live fleet and
hands its exit code here: 2 (drift) opens the issue or updates it with the new report,
1 with a report (some boxes could not be read) opens or updates it saying the check is
incomplete, 1 without one (diff stopped before comparing: a config error, a secret
backend, credentials) says the check failed, with the end of what diff printed on stderr
(`--error-file`), 0 (no drift) closes it with a comment. The issue is found among the open issues
labelled `reconciler-drift` by the marker `<!-- reconciler:drift -->` on its body's
first line (the label narrows the listing; the marker decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import httpx

from reconciler.app.prcomment import COMMENT_LIMIT, read_body
from reconciler.errors import Refused
from reconciler.github import GitHub, env_from
from reconciler.report.markers import DRIFT, find_marked, with_marker

LABEL: Final = "reconciler-drift"
TITLES: Final = {
    2: "Fleet drift: the live fleet differs from the config repo",
    1: "Fleet drift check incomplete: some boxes could not be read",
}
FAILED_TITLE: Final = "Fleet drift check failed: reconcile diff could not compare"
FAILED_NOTE: Final = (
    "> [!CAUTION]\n"
    "> **The drift check did not compare the fleet**: `reconcile diff --exit-code` exited 1 "
    "without a report (a config error on main, a secret backend, the fleet's credentials). "
    "Fix what it says below; the next run updates this issue.\n"
)
ERROR_LINES: Final = 40  # the end of diff's stderr kept in the issue
UNREADABLE_NOTE: Final = (
    "> [!WARNING]\n"
    "> **Some boxes could not be read** (`reconcile diff --exit-code` exited 1: unreachable, "
    "or an unreadable stamp). The drift check is incomplete; fix them and the next run "
    "updates this issue.\n"
)


@dataclass(frozen=True, slots=True)
class DriftRequest:
    exit_code: int
    body_file: Path | None = None
    label: str = LABEL
    error_file: Path | None = None  # diff's stderr: shown when it stopped without a report


@dataclass(frozen=True, slots=True)
class DriftResult:
    action: Literal["opened", "updated", "closed", "nothing"]
    number: int | None
    url: str | None = None


def _failed(req: DriftRequest, text: str) -> bool:
    """Exit 1 and no report: diff stopped before it compared anything."""
    return req.exit_code == 1 and not text.strip()


def _errors(req: DriftRequest) -> str:
    """The last lines diff printed on stderr, fenced (secret values are redacted at the
    source and again as the file is read), or '' when there is no such file."""
    if req.error_file is None:
        return ""
    lines = read_body(req.error_file, "--error-file").strip().splitlines()[-ERROR_LINES:]
    if not lines:
        return ""
    fence = "````" if any(line.startswith("```") for line in lines) else "```"
    return f"\n{fence}text\n" + "\n".join(lines) + f"\n{fence}\n"


def _report(req: DriftRequest) -> str:
    return read_body(req.body_file) if req.body_file is not None else ""


def _body(req: DriftRequest, environ: Mapping[str, str]) -> str:
    text = _report(req)
    if _failed(req, text):
        text = FAILED_NOTE + _errors(req)
    elif req.exit_code == 1:
        text = UNREADABLE_NOTE + _errors(req) + ("\n" + text if text else "")
    run = _run_url(environ)
    if run:
        text += f"\n\n<sub>From the drift check run {run}.</sub>\n"
    body = with_marker(text, DRIFT)
    if len(body) > COMMENT_LIMIT:
        cut = COMMENT_LIMIT - 200
        body = body[:cut] + "\n\n*Cut to stay under GitHub's limit; run `reconcile diff`.*\n"
    return body


def _run_url(environ: Mapping[str, str]) -> str | None:
    server, repo, run = (
        environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def drift_issue(
    req: DriftRequest,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> DriftResult:
    """Open, update or close the drift issue for the drift check's exit code."""
    if req.exit_code not in (0, 1, 2):
        raise Refused(
            f"--exit-code-from {req.exit_code}: `reconcile diff --exit-code` exits 0 (no "
            "drift), 2 (drift) or 1 (boxes unreadable, or diff failed); anything else is not"
            " a drift result"
        )
    body = _body(req, environ) if req.exit_code else ""
    with GitHub(env_from(environ), transport=transport) as gh:
        found = find_marked(gh.open_issues(req.label), DRIFT)
        number = int(found["number"]) if found is not None and "number" in found else None
        if req.exit_code == 0:
            if number is None:
                return DriftResult("nothing", None)
            gh.create_comment(number, "No drift: the live fleet matches the config repo again.")
            doc = gh.update_issue(number, state="closed", state_reason="completed")
            return DriftResult("closed", number, _url(doc))
        title = FAILED_TITLE if _failed(req, _report(req)) else TITLES[req.exit_code]
        if number is None:
            doc = gh.create_issue(title, body, [req.label])
            return DriftResult("opened", int(doc.get("number") or 0), _url(doc))
        doc = gh.update_issue(number, title=title, body=body)
        return DriftResult("updated", number, _url(doc))


def _url(doc: Mapping[str, object]) -> str | None:
    url = doc.get("html_url")
    return url if isinstance(url, str) else None
