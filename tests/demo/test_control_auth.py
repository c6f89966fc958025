"""The demo's control API changes boxes, so a web page must not reach it: a POST needs the
token `reconcile demo up` writes into DIR (0600) and a JSON body; `demo fault` sends both."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.demo import DemoFleet
from reconciler.demo.http import TOKEN_FILE


def _token(fleet: DemoFleet) -> str:
    return (fleet.dir.root / TOKEN_FILE).read_text(encoding="utf-8").strip()


async def test_a_post_without_the_token_is_forbidden(demo_fleet: DemoFleet) -> None:
    """No token, a wrong one, or a cross-origin form post: 403, and no fault is set."""
    box = demo_fleet.box(demo_fleet.names[0])
    async with httpx.AsyncClient(base_url=box.base_url) as client:
        r = await client.post("/_demo/fault", json={"kind": "stall"})
        assert r.status_code == 403
        r = await client.post("/_demo/fault", json={"kind": "stall"},
                              headers={"Authorization": "Bearer wrong"})  # fmt: skip
        assert r.status_code == 403
        r = await client.post(
            "/_demo/clear", content=b'{"kind": "stall"}',
            headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        )  # fmt: skip
        assert r.status_code in (403, 415)
    assert box.faults.as_dict() == {}


async def test_a_post_that_is_not_json_is_unsupported(demo_fleet: DemoFleet) -> None:
    """With the token but a form or text body (what a page can send unasked): 415."""
    box = demo_fleet.box(demo_fleet.names[0])
    auth = {"Authorization": f"Bearer {_token(demo_fleet)}"}
    async with httpx.AsyncClient(base_url=box.base_url) as client:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            r = await client.post("/_demo/fault", content=b'{"kind": "stall"}',
                                  headers={**auth, "Content-Type": ctype})  # fmt: skip
            assert r.status_code == 415, ctype
        r = await client.post("/_demo/fault", json={"kind": "stall"}, headers=auth)
        assert r.status_code == 200
    assert box.faults.as_dict() == {"stall": None}


async def test_the_token_file_is_private(demo_fleet: DemoFleet) -> None:
    """DIR/control.token is 0600 and holds a long random token."""
    path = demo_fleet.dir.root / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(_token(demo_fleet)) >= 32


async def test_reconcile_demo_fault_still_works(demo_fleet: DemoFleet) -> None:
    """The CLI reads the token from DIR and sets, then clears, a fault."""
    name, root = demo_fleet.names[0], str(demo_fleet.dir.root)

    def cli(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output

    code, out = await asyncio.to_thread(cli, "demo", "fault", "--dir", root, name, "stall")
    assert code == 0, out
    assert demo_fleet.box(name).faults.as_dict() == {"stall": None}
    code, out = await asyncio.to_thread(cli, "demo", "fault", "--dir", root, name, "--clear")
    assert code == 0, out
    assert demo_fleet.box(name).faults.as_dict() == {}


def test_up_writes_the_token_before_the_boxes_start(tmp_path: Path) -> None:
    """`reconcile demo up` leaves DIR/control.token (0600); `down` stops the fleet."""
    from reconciler.demo import runner  # noqa: PLC0415

    root = tmp_path / "demo"
    runner.up(root, 1, tick_s=0.2)
    try:
        path = root / TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        runner.down(root)
