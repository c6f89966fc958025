"""HTTP to the agents (httpx): the health answer and the Prometheus text of each box.

One `HttpProbe` (one pooled `httpx.AsyncClient`, with connection limits) serves
a whole command. Every request has a deadline for the whole exchange, not per
phase. A 503 whose body is a health answer is still an answer (a crashed agent
says alive=false); anything else that is not a 2xx is a RemoteError. httpx
exceptions never leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from types import TracebackType

import httpx

from reconciler.model.box import ContractError, Health, parse_health
from reconciler.transport.base import ConnectError, OperationTimeout, RemoteError, TransportError

SERVICE_UNAVAILABLE = 503


@contextlib.contextmanager
def _errors(box: str, operation: str, timeout: float) -> Iterator[None]:
    """Translate httpx failures into TransportErrors naming the box and the request."""
    try:
        yield
    except TransportError:
        raise
    except httpx.ConnectTimeout:
        raise ConnectError(box, operation, f"no connection within {timeout}s") from None
    except (TimeoutError, httpx.TimeoutException):
        raise OperationTimeout(box, operation, f"no answer within {timeout}s") from None
    except httpx.ConnectError as exc:
        raise ConnectError(box, operation, f"cannot connect: {exc}") from None
    except httpx.InvalidURL as exc:
        raise TransportError(box, operation, f"invalid URL: {exc}; fix the agent's URL") from None
    except httpx.UnsupportedProtocol as exc:
        raise TransportError(box, operation, f"{exc}; fix the agent's URL") from None
    except httpx.HTTPError as exc:
        raise RemoteError(box, operation, f"{type(exc).__name__}: {exc}") from None


class HttpProbe:
    """One shared HTTP client for a command: health answers and metrics text."""

    def __init__(
        self,
        *,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Each box is its own origin, asked once or twice per command: keeping every
        # connection alive buys nothing, and httpcore scans its whole pool on every
        # request (quadratic over a 1,000-box fleet). Keep only a few idle ones.
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=min(max_connections, 32)
        )
        self._client = httpx.AsyncClient(
            limits=limits, transport=transport, follow_redirects=False, trust_env=False
        )

    async def __aenter__(self) -> HttpProbe:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, url: str, box: str, operation: str, timeout: float) -> httpx.Response:
        with _errors(box, operation, timeout):
            async with asyncio.timeout(timeout):
                return await self._client.get(url, timeout=timeout)

    async def fetch_health(self, url: str, *, timeout: float, box: str | None = None) -> Health:
        """The health answer at url (a 503 with a health body counts: alive=false)."""
        box = box or url
        op = f"health GET {url}"
        resp = await self._get(url, box, op, timeout)
        if resp.is_success or resp.status_code == SERVICE_UNAVAILABLE:
            try:
                return parse_health(resp.content)
            except ContractError as exc:
                if resp.is_success:
                    raise RemoteError(box, op, f"{exc}; is this the agent's health URL?") from None
        raise RemoteError(box, op, f"HTTP {resp.status_code} {resp.reason_phrase}")

    async def fetch_text(self, url: str, *, timeout: float, box: str | None = None) -> str:
        """The body of url as text (the Prometheus exposition); RemoteError unless 2xx."""
        box = box or url
        op = f"GET {url}"
        resp = await self._get(url, box, op, timeout)
        if not resp.is_success:
            raise RemoteError(box, op, f"HTTP {resp.status_code} {resp.reason_phrase}")
        return resp.text
