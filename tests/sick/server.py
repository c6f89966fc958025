"""A sick HTTP server on loopback (stdlib, in a thread): trickles, hangs, floods, lies.

`SickServer.start()` binds 127.0.0.1:0; `answer` decides each GET: a callable
(path, query) -> Behaviour. `stop()` releases every held request and joins the
thread. Tests use it as a context manager, so every server a test starts stops.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Behaviour:
    """One answer: status and body, optionally trickled, hung before headers, or unbounded."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    trickle_s: float = 0.0  # seconds between single bytes of the body
    hang: bool = False  # never send the headers (until the server stops)
    endless: bool = False  # no Content-Length, 64 KiB chunks until the client leaves


Answer = Callable[[str, dict[str, str]], Behaviour]


def prom_ok(data: object) -> Behaviour:
    """A successful Prometheus API answer carrying `data`."""
    return Behaviour(body=json.dumps({"status": "success", "data": data}).encode())


def prom_time(now: float = 1000.0) -> Behaviour:
    return prom_ok({"resultType": "scalar", "result": [now, f"{now}"]})


class SickServer:
    """The server and its thread."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.release = threading.Event()
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                owner.requests.append((parts.path, query))
                b = owner.answer(parts.path, query)
                if b.hang:
                    owner.release.wait(30)
                    return
                self.send_response(b.status)
                self.send_header("Content-Type", b.content_type)
                if b.endless:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b"x" * 65536
                    deadline = time.monotonic() + 30
                    while not owner.release.is_set() and time.monotonic() < deadline:
                        try:
                            self.wfile.write(chunk)
                        except OSError:
                            return
                    return
                self.send_header("Content-Length", str(len(b.body)))
                self.end_headers()
                if not b.trickle_s:
                    with contextlib.suppress(OSError):  # the client left (a refused body)
                        self.wfile.write(b.body)
                    return
                for i in range(len(b.body)):
                    if owner.release.wait(b.trickle_s):
                        return
                    try:
                        self.wfile.write(b.body[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,))
        self._thread.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SickServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> SickServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
