"""HTTP to the agents (httpx): the health answer and the Prometheus text of each box.

One `HttpProbe` (one pooled `httpx.AsyncClient`, with connection limits) serves
a whole command. Every request has a deadline for the whole exchange (connect,
headers and the body, however slowly it trickles), not per phase, and a body
larger than `MAX_BODY` (1 MiB) is refused as it arrives, never buffered whole.
A 503 whose body is a health answer is still an answer (a crashed agent says
alive=false); anything else that is not a 2xx is a RemoteError. httpx
exceptions never leave this module.

Where a probe may go: given the box's own host (`host=`), a URL naming another
host is refused unless fleet.yaml `connection.allowed_probe_hosts` lists it;
link-local and cloud metadata addresses are refused always.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import httpx

from reconciler.model.box import ContractError, Health, parse_health
from reconciler.model.fleet import probe_host_refusal
from reconciler.transport.base import ConnectError, OperationTimeout, RemoteError, TransportError

SERVICE_UNAVAILABLE = 503
MAX_BODY: Final = 1024 * 1024  # bytes of a health, metrics or Prometheus answer


class BodyTooLarge(Exception):
    """The answer's body passed the limit (declared, or as it arrived)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit, self.declared = limit, declared
        size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
        super().__init__(f"answer too large ({size}; the limit is {limit // 1024} KiB)")


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole (bounded) HTTP answer."""

    status_code: int
    reason_phrase: str
    content: bytes
    encoding: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


async def get_bounded(
    client: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    params: Mapping[str, str] | None = None,
    limit: int = MAX_BODY,
) -> Answer:
    """GET url within `timeout` seconds in all, reading at most `limit` bytes of body.

    Raises:
        TimeoutError: the whole exchange did not finish in time.
        BodyTooLarge: the body is (or says it is) larger than `limit`.
        httpx.HTTPError: anything else httpx refuses.
    """
    async with (
        asyncio.timeout(timeout),
        client.stream("GET", url, params=params, timeout=timeout) as resp,
    ):
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit, int(declared))
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(limit)
        return Answer(resp.status_code, resp.reason_phrase, bytes(body), resp.encoding or "utf-8")


def probe_refusal(url: str, own_host: str | None, allowed: Collection[str]) -> str | None:
    """Why `url` may not be probed for a box at `own_host`, or None when it may (the rule
    is model.fleet.probe_host_refusal, which `reconcile validate` checks too)."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return None  # httpx names the bad URL itself
    why = probe_host_refusal(host, own_host, allowed)
    return None if why is None else f"refused: {why}"


@contextlib.contextmanager
def _errors(box: str, operation: str, timeout: float) -> Iterator[None]:
    """Translate httpx failures into TransportErrors naming the box and the request."""
    try:
        yield
    except TransportError:
        raise
    except BodyTooLarge as exc:
        raise RemoteError(box, operation, str(exc)) from None
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
        allowed_hosts: Collection[str] = (),
        max_body: int = MAX_BODY,
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
        self.allowed_hosts = tuple(allowed_hosts)
        self.max_body = max_body
        # A request's timeout starts once it has a connection slot: a box is judged on how
        # it answers, not on how long our own queue was (1,000 health reads share 256).
        self._slots = asyncio.Semaphore(max_connections)

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

    async def _get(
        self, url: str, box: str, operation: str, timeout: float, host: str | None
    ) -> Answer:
        refusal = probe_refusal(url, host, self.allowed_hosts)
        if refusal is not None:
            raise TransportError(box, operation, refusal)
        async with self._slots:
            with _errors(box, operation, timeout):
                return await get_bounded(self._client, url, timeout=timeout, limit=self.max_body)

    async def fetch_health(
        self, url: str, *, timeout: float, box: str | None = None, host: str | None = None
    ) -> Health:
        """The health answer at url (a 503 with a health body counts: alive=false).

        `host`: the box's own host; a URL elsewhere is refused unless allowed.
        """
        box = box or url
        op = f"health GET {url}"
        resp = await self._get(url, box, op, timeout, host)
        if resp.is_success or resp.status_code == SERVICE_UNAVAILABLE:
            try:
                return parse_health(resp.content)
            except ContractError as exc:
                if resp.is_success:
                    raise RemoteError(box, op, f"{exc}; is this the agent's health URL?") from None
        raise RemoteError(box, op, f"HTTP {resp.status_code} {resp.reason_phrase}")

    async def fetch_text(
        self, url: str, *, timeout: float, box: str | None = None, host: str | None = None
    ) -> str:
        """The body of url as text (the Prometheus exposition); RemoteError unless 2xx."""
        box = box or url
        op = f"GET {url}"
        resp = await self._get(url, box, op, timeout, host)
        if not resp.is_success:
            raise RemoteError(box, op, f"HTTP {resp.status_code} {resp.reason_phrase}")
        return resp.text
