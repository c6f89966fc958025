"""Talking to a running demo fleet from outside: faults and counters over `/_demo/`.

Used by `reconcile demo fault` (and anyone scripting the demo); the box's own
HTTP server answers, so it works whichever worker process runs the box. POSTs
carry the token of DIR/control.token (see demo/http.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from reconciler.demo.faults import FaultKind, check_value
from reconciler.demo.fleetrepo import DemoSetupError
from reconciler.demo.http import TOKEN_FILE, read_token
from reconciler.demo.runner import FleetInfo, read_info


def fleet_info(root: Path) -> FleetInfo:
    info = read_info(root)
    if info is None:
        raise DemoSetupError(
            f"no demo fleet in {root}; start one with `reconcile demo up --dir {root}`"
        )
    return info


def _call(root: Path, agent: str, method: str, what: str, body: Any = None) -> Any:
    info = fleet_info(root)
    port = info.agent(agent)["http_port"]
    url = f"http://127.0.0.1:{port}/_demo/{what}"
    token = read_token(info.dir.root)
    if method == "POST" and not token:
        raise DemoSetupError(
            f"no control token in {info.dir.root / TOKEN_FILE}; restart the fleet with "
            f"`reconcile demo up --dir {root}`"
        )
    try:
        r = httpx.request(
            method, url, json=body, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        raise DemoSetupError(
            f"demo box {agent} does not answer on {url} ({exc}); is the fleet up? "
            f"`reconcile demo up --dir {root}`"
        ) from None
    if r.status_code != 200:
        try:
            error = r.json().get("error", r.text)
        except (ValueError, AttributeError):
            error = r.text
        raise DemoSetupError(f"demo box {agent}: HTTP {r.status_code}: {error}")
    return r.json()


def inject(root: Path, agent: str, kind: FaultKind, value: float | None = None) -> dict[str, Any]:
    """Inject a fault into a running box; returns its active faults."""
    body = {"kind": kind.value, "value": check_value(kind, value)}
    result: dict[str, Any] = _call(root, agent, "POST", "fault", body)
    return result


def clear(root: Path, agent: str, kind: FaultKind | None = None) -> dict[str, Any]:
    """Clear one fault (or all) of a running box; returns its active faults."""
    if kind is None:
        result: dict[str, Any] = _call(root, agent, "POST", "clear", {})
    else:
        result = _call(root, agent, "POST", "fault", {"kind": kind.value, "clear": True})
    return result


def counters(root: Path, agent: str) -> dict[str, int]:
    result: dict[str, int] = _call(root, agent, "GET", "counters")
    return result
