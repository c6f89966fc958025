"""The Prometheus HTTP API over httpx: instant and range queries, answers as plain values.

`PrometheusClient.instant(query, at=)` and `.range(query, start, end, step)`
return the result series as (labels, value) or (labels, [(t, value)]) with
floats parsed as Prometheus writes them ("NaN", "+Inf" included: the metric
source rejects them, this module does not hide them). Anything that is not a
well-formed successful vector/matrix answer (broken JSON, a string where a
number belongs, a matrix where a vector was asked, labels that are not a map)
raises `PrometheusError`, naming the URL and the query. Each request has one
deadline for the whole exchange, a trickling body included, and a body over
1 MiB is refused as it arrives. httpx exceptions never leave this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from reconciler.transport.base import TransportError
from reconciler.transport.http import MAX_BODY, BodyTooLarge, get_bounded

Labels = Mapping[str, str]


class PrometheusError(TransportError):
    """Prometheus did not answer the query (down, refused, timed out, an error status, nonsense)."""


class _Malformed(Exception):
    """A piece of the answer is not what the API documents."""


def _number(raw: object) -> float:
    """A sample value: Prometheus writes it as a string ("1.5", "NaN", "+Inf")."""
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise _Malformed(f"sample value {raw!r} is not a number")
    try:
        return float(raw)
    except ValueError:
        raise _Malformed(f"sample value {raw!r} is not a number") from None


def _labels(series: object) -> dict[str, str]:
    if not isinstance(series, dict):
        raise _Malformed(f"series {series!r:.80} is not an object")
    metric = series.get("metric", {})
    if not isinstance(metric, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metric.items()
    ):
        raise _Malformed(f"labels {metric!r:.80} are not a map of strings")
    return dict(metric)


def _point(raw: object) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise _Malformed(f"sample {raw!r:.80} is not a [time, value] pair")
    return _number(raw[0]), _number(raw[1])


def _values(series: dict[str, Any]) -> list[object]:
    values = series.get("values", [])
    if not isinstance(values, list):
        raise _Malformed(f"values {values!r:.80} are not a list")
    return values


def _result(data: object, kind: str) -> tuple[str, Any]:
    if not isinstance(data, dict):
        raise _Malformed(f"data {data!r:.80} is not an object")
    got = data.get("resultType")
    result = data.get("result")
    if got == kind == "scalar":
        return got, result
    if got != kind or not isinstance(result, list):
        raise _Malformed(f"a {got!r} answer where a {kind} was asked")
    return got, result


class PrometheusClient:
    """One httpx client for one Prometheus server."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_body = max_body
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, trust_env=False, follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}"
        op = f"GET {path} query={params.get('query', '')[:200]!r}"
        try:
            resp = await get_bounded(
                self._client, url, params=params, timeout=self.timeout, limit=self.max_body
            )
        except (TimeoutError, httpx.TimeoutException):
            raise PrometheusError(url, op, f"no answer within {self.timeout}s") from None
        except BodyTooLarge as exc:
            raise PrometheusError(url, op, str(exc)) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(url, op, f"{type(exc).__name__}: {exc}") from None
        try:
            doc = json.loads(resp.content)
        except ValueError:  # UnicodeDecodeError included
            raise PrometheusError(url, op, f"HTTP {resp.status_code}: not JSON") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            error = doc.get("error") if isinstance(doc, dict) else None
            raise PrometheusError(url, op, f"HTTP {resp.status_code}: {error or 'failed'}")
        return doc.get("data")

    def _malformed(self, what: str, query: str, exc: _Malformed) -> PrometheusError:
        return PrometheusError(self.base_url, f"{what} {query[:200]!r}", f"malformed answer: {exc}")

    async def instant(self, query: str, *, at: float | None = None) -> list[tuple[Labels, float]]:
        """An instant query's vector (a scalar answer is one series without labels)."""
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._get("/api/v1/query", params)
        try:
            scalar = isinstance(data, dict) and data.get("resultType") == "scalar"
            _, result = _result(data, "scalar" if scalar else "vector")
            if scalar:
                return [({}, _point(result)[1])]
            return [(_labels(r), _point(r.get("value"))[1]) for r in result]
        except _Malformed as exc:
            raise self._malformed("query", query, exc) from None

    async def range(
        self, query: str, *, start: float, end: float, step: float
    ) -> list[tuple[Labels, list[tuple[float, float]]]]:
        """A range query's matrix: every series with its (time, value) points."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = await self._get("/api/v1/query_range", params)
        try:
            _, result = _result(data, "matrix")
            out: list[tuple[Labels, list[tuple[float, float]]]] = []
            for r in result:
                labels = _labels(r)
                out.append((labels, [_point(p) for p in _values(r)]))
            return out
        except _Malformed as exc:
            raise self._malformed("range query", query, exc) from None
