"""Health and metrics over real HTTP on loopback (a stdlib server in a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from reconciler.testing.ports import closed_port
from reconciler.transport.base import ConnectError, OperationTimeout, RemoteError
from reconciler.transport.http import HttpProbe

HEALTH = {
    "alive": True, "heartbeat_age_s": 1.5, "loaded_revision": "abc", "loaded_sha256": None,
    "agent_version": "1.2.3", "tasks_processed": 10, "queue_depth": 0, "uptime_s": 100.0,
}  # fmt: skip
RELEASE = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {
        "/health": (200, "application/json", json.dumps(HEALTH).encode()),
        "/crashed": (503, "application/json", json.dumps({**HEALTH, "alive": False}).encode()),
        "/down": (503, "text/plain", b"maintenance"),
        "/boom": (500, "text/plain", b"oops"),
        "/garbage": (200, "application/json", b'{"alive": "maybe"}'),
        "/metrics": (200, "text/plain; version=0.0.4", b"tasks_total 3\n"),
    }

    def do_GET(self) -> None:
        if self.path == "/slow":
            RELEASE.wait(10)
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    RELEASE.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    RELEASE.set()
    server.shutdown()
    server.server_close()
    thread.join()


async def test_health_answer_is_parsed(base_url: str) -> None:
    """A 200 health answer becomes a Health."""
    async with HttpProbe() as probe:
        h = await probe.fetch_health(f"{base_url}/health", timeout=5, box="a1")
    assert h.alive
    assert h.tasks_processed == 10


async def test_crashed_agent_503_with_json_is_still_an_answer(base_url: str) -> None:
    """A 503 carrying a health body is parsed: the agent says it is not alive."""
    async with HttpProbe() as probe:
        h = await probe.fetch_health(f"{base_url}/crashed", timeout=5, box="a1")
    assert h.alive is False


@pytest.mark.parametrize(
    ("path", "needle"),
    [("/down", "HTTP 503"), ("/boom", "HTTP 500"), ("/garbage", "invalid health answer")],
)
async def test_non_answers_are_remote_errors(base_url: str, path: str, needle: str) -> None:
    """A 5xx without a health body, or a body that breaks the contract, is a RemoteError."""
    async with HttpProbe() as probe:
        with pytest.raises(RemoteError) as err:
            await probe.fetch_health(f"{base_url}{path}", timeout=5, box="a1")
    assert err.value.box == "a1"
    assert needle in str(err.value)
    assert path in str(err.value)


async def test_slow_endpoint_is_an_operation_timeout(base_url: str) -> None:
    """An answer that does not come within the timeout is OperationTimeout."""
    async with HttpProbe() as probe:
        with pytest.raises(OperationTimeout) as err:
            await probe.fetch_health(f"{base_url}/slow", timeout=0.2, box="a1")
    assert "within 0.2s" in str(err.value)


async def test_refused_port_is_a_connect_error() -> None:
    """Nothing listening on the port gives ConnectError."""
    port = closed_port()
    async with HttpProbe() as probe:
        with pytest.raises(ConnectError):
            await probe.fetch_text(f"http://127.0.0.1:{port}/metrics", timeout=2, box="a1")


async def test_fetch_text_returns_the_exposition(base_url: str) -> None:
    """fetch_text returns the body; a 404 is a RemoteError."""
    async with HttpProbe() as probe:
        assert await probe.fetch_text(f"{base_url}/metrics", timeout=5) == "tasks_total 3\n"
        with pytest.raises(RemoteError, match="HTTP 404"):
            await probe.fetch_text(f"{base_url}/nope", timeout=5)
