"""Hidden markers: how reconciler finds the one comment or issue it owns and updates it.

A marker is an HTML comment, invisible in rendered markdown, on the first line of
the body: `<!-- reconciler:NAME -->`. The pull-request comment of the fleet diff
carries `reconciler:fleet-diff`, the drift issue `reconciler:drift`. Pure: bodies in,
the first one that carries the marker out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from reconciler.errors import Refused

FLEET_DIFF: Final = "fleet-diff"
DRIFT: Final = "drift"
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def marker(name: str) -> str:
    """The hidden marker line of `name`; Refused when the name would not survive in HTML."""
    if not _NAME.match(name):
        raise Refused(
            f"--marker {name!r}: use lowercase letters, digits, '.', '_' or '-' "
            "(at most 63 characters), e.g. fleet-diff"
        )
    return f"<!-- reconciler:{name} -->"


def carries(body: str | None, name: str) -> bool:
    """Whether a body carries the marker of `name` (anywhere, on a line of its own)."""
    mark = marker(name)
    return body is not None and any(line.strip() == mark for line in body.splitlines())


def with_marker(body: str, name: str) -> str:
    """The body with the marker as its first line (not added twice)."""
    mark = marker(name)
    if body.splitlines()[:1] == [mark]:
        return body
    return f"{mark}\n{body}"


def find_marked(items: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The first (oldest) comment or issue, as GitHub returns it, whose body carries the
    marker; one written by a bot account (the workflow's token) before one by a person who
    copied the marker."""
    marked = [i for i in items if isinstance(i.get("body"), str) and carries(i["body"], name)]
    bots = [i for i in marked if _is_bot(i)]
    found = bots or marked
    return found[0] if found else None


def _is_bot(item: Mapping[str, Any]) -> bool:
    user = item.get("user")
    return isinstance(user, Mapping) and user.get("type") == "Bot"
