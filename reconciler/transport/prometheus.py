"""The Prometheus HTTP API over httpx: instant and range queries, answers as plain values.

`PrometheusClient.instant(query, at=)` and `.range(query, start, end, step)`
return the result series as (labels, value) or (labels, [(t, value)]) with
floats parsed as Prometheus writes them ("NaN", "+Inf" included: the gates
reject them, this module does not hide them). Anything that is not a
successful vector/matrix answer raises `PrometheusError`, naming the URL and
the query; httpx exceptions never leave this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from reconciler.transport.base import TransportError

Labels = Mapping[str, str]


class PrometheusError(TransportError):
    """Prometheus did not answer the query (down, refused, timed out, an error status)."""


class PrometheusClient:
    """One httpx client for one Prometheus server."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, trust_env=False, follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}"
        op = f"GET {path} query={params.get('query', '')[:200]!r}"
        try:
            resp = await self._client.get(url, params=params)
        except httpx.TimeoutException:
            raise PrometheusError(url, op, f"no answer within {self.timeout}s") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(url, op, f"{type(exc).__name__}: {exc}") from None
        try:
            doc = resp.json()
        except ValueError:
            raise PrometheusError(url, op, f"HTTP {resp.status_code}: not JSON") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            error = doc.get("error") if isinstance(doc, dict) else None
            raise PrometheusError(url, op, f"HTTP {resp.status_code}: {error or 'failed'}")
        return doc.get("data")

    async def instant(self, query: str, *, at: float | None = None) -> list[tuple[Labels, float]]:
        """An instant query's vector (a scalar answer is one series without labels)."""
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._get("/api/v1/query", params)
        kind = data.get("resultType") if isinstance(data, dict) else None
        result = data.get("result") if isinstance(data, dict) else None
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [({}, float(result[1]))]
        if kind != "vector" or not isinstance(result, list):
            raise PrometheusError(self.base_url, f"query {query!r}", f"unexpected answer {kind}")
        return [(dict(r.get("metric", {})), float(r["value"][1])) for r in result]

    async def range(
        self, query: str, *, start: float, end: float, step: float
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """A range query's matrix: every series with its (time, value) points."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = await self._get("/api/v1/query_range", params)
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PrometheusError(self.base_url, f"range query {query!r}", "unexpected answer")
        return [
            (dict(r.get("metric", {})), [(float(t), float(v)) for t, v in r.get("values", [])])
            for r in data.get("result", [])
        ]
