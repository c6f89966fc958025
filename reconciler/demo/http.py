"""The HTTP side of a demo box: health, metrics, and the demo's own control API.

A small HTTP/1.1 server (h11 over asyncio streams) per box, on the box's own
port: `GET /healthz` (the contract's JSON; 503 while the agent is down),
`GET /metrics` (Prometheus text; 503 while down), `GET /v1/caller` (the
agent's inbound check: 200 when `Authorization: Bearer TOKEN` holds a token
the agent accepts, the `current` or staged `next` of its `caller_token`
secret, else 401), and under `/_demo/` the
fault and counter API that tests and `reconcile demo fault` use. The product
never calls `/_demo/`.

A POST to `/_demo/` changes the box, so it needs `Authorization: Bearer TOKEN`
(the token in DIR/control.token, 0600, written by `reconcile demo up` or by
the first box of an in-process fleet) and `Content-Type: application/json`:
a web page cannot send either without the browser asking first, so a page the
operator visits cannot inject faults (403 without the token, 415 without JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import h11
from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.demo.faults import FaultError, parse_kind

if TYPE_CHECKING:
    from reconciler.demo.box import DemoBox

_MAX_BODY = 64 * 1024
_JSON = "application/json"
TOKEN_FILE: Final = "control.token"  # noqa: S105 (a file name, not a secret)
FORBIDDEN: Final = 403
UNSUPPORTED_MEDIA: Final = 415


def demo_dir_of(box_root: Path) -> Path:
    """A box's demo DIR (its root is DIR/boxes/NAME/root)."""
    return box_root.parents[2]


def ensure_token(demo_dir: Path) -> str:
    """DIR/control.token: read it, or create it (0600, 32 random bytes) when missing."""
    path = demo_dir / TOKEN_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        finally:
            os.close(fd)
    return read_token(demo_dir)


def read_token(demo_dir: Path) -> str:
    """The control token of DIR ("" when there is none)."""
    try:
        return (demo_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = _JSON


def _json(status: int, doc: Any) -> Reply:
    return Reply(status, (json.dumps(doc, sort_keys=True) + "\n").encode())


def _object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise FaultError("the body must be a JSON object")
    return doc


def _number(
    doc: dict[str, Any], key: str, default: float | None, lo: float, hi: float
) -> float | None:
    value = doc.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise FaultError(f"{key} must be a number, {lo:g}..{hi:g}")
    return float(value)


class HttpEndpoint:
    """A box's HTTP listener."""

    def __init__(self, box: DemoBox, sock: socket.socket) -> None:
        self.box = box
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._token = ""

    async def start(self) -> None:
        self._token = ensure_token(demo_dir_of(Path(self.box.spec.root)))
        self._server = await asyncio.start_server(self._client, sock=self._sock)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- routing ---------------------------------------------------------------------

    def route(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """The reply to one request (`headers`: lower-case names)."""
        box, path = self.box, target.split("?", 1)[0]
        if method == "GET" and path == "/healthz":
            return Reply(200 if box.agent.crashed is None else 503, box.agent.health_json())
        if method == "GET" and path == "/metrics":
            if box.agent.crashed is not None:
                return _json(503, {"error": f"agent is down: {box.agent.crashed}"})
            return Reply(200, box.agent.metrics.exposition(), CONTENT_TYPE_LATEST)
        if method == "GET" and path == "/v1/caller":
            scheme, _, given = (headers or {}).get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and box.agent.accepts_caller(given.strip()):
                return _json(200, {"ok": True, "agent": box.name})
            box.counters.caller_refusals += 1
            return _json(401, {"error": "the caller's token is not accepted"})
        if path.startswith("/_demo/"):
            refused = self._refusal(method, headers or {})
            if refused is not None:
                return refused
            return self._demo(method, path.removeprefix("/_demo/"), body)
        return _json(404, {"error": f"no such endpoint: {path}"})

    def _refusal(self, method: str, headers: Mapping[str, str]) -> Reply | None:
        """403 for a POST without the control token, 415 for one whose body is not JSON."""
        if method != "POST":
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if (
            not self._token
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), self._token.encode())
        ):
            return _json(
                FORBIDDEN,
                {"error": f"a control POST needs 'Authorization: Bearer TOKEN' (DIR/{TOKEN_FILE})"},
            )
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != _JSON:
            return _json(UNSUPPORTED_MEDIA, {"error": f"a control POST needs Content-Type {_JSON}"})
        return None

    def _demo(self, method: str, what: str, body: bytes) -> Reply:
        box = self.box
        if method == "GET" and what == "counters":
            return _json(200, box.counters.as_dict())
        if method == "GET" and what == "faults":
            return _json(200, box.faults.as_dict())
        if method == "GET" and what == "state":
            return _json(200, box.state())
        if method != "POST" or what not in ("fault", "clear", "work"):
            return _json(404, {"error": f"no such demo endpoint: {method} /_demo/{what}"})
        try:
            doc = _object(body)
            if what == "fault":
                kind = parse_kind(str(doc.get("kind")))
                value = _number(doc, "value", None, 0, 1e9)
                if doc.get("clear"):
                    box.clear(kind)
                else:
                    box.fault(kind, value)
                return _json(200, box.faults.as_dict())
            if what == "clear":
                box.clear()
                return _json(200, box.faults.as_dict())
            box.work(_number(doc, "seconds", 1.0, 0, 86400) or 0.0)
            return _json(200, box.state())
        except FaultError as exc:
            return _json(400, {"error": str(exc)})

    # -- HTTP/1.1 --------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    break
                try:
                    headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
                    reply = self.route(
                        request.method.decode(), request.target.decode(), body, headers
                    )
                except Exception as exc:  # a broken box answers 500 and stays up
                    reply = _json(500, {"error": f"{type(exc).__name__}: {exc}"})
                self._send(conn, writer, reply)
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read_request(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and request is None:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    raise h11.LocalProtocolError("request body too large")
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None, b""

    @staticmethod
    def _send(conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            ("Server", "reconciler-demo-box"),
        ]
        out = conn.send(h11.Response(status_code=reply.status, headers=headers))
        out += conn.send(h11.Data(data=reply.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out or b"")
