"""A Prometheus that answers nonsense: every malformed, empty or non-numeric answer is a
measurement error, retried, then the gates FAIL with the reason; nothing crashes apply."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import pytest

from reconciler.engine.gaterun import GatePolicy, GateRunner
from reconciler.gates import AgentInfo, Outcome
from reconciler.metrics.promsource import PrometheusSource
from reconciler.metrics.source import Measurement
from reconciler.model.fleet import Gate
from reconciler.testing.clock import FakeClock

from .server import Behaviour, SickServer, prom_ok, prom_time

AGENTS = ("a1", "a2")
GATE = Gate(name="task-errors", metric="error_rate", max_ratio=2.0, min_samples=10)


def vector(*samples: object) -> Behaviour:
    return prom_ok({"resultType": "vector", "result": list(samples)})


def sample(value: object, agent: str = "a1", **labels: str) -> dict[str, object]:
    return {"metric": {"agent": agent, **labels}, "value": [1000.0, value]}


MALFORMED = {
    "string-sample": vector(sample("abc")),
    "value-not-a-pair": vector({"metric": {"agent": "a1"}, "value": "7"}),
    "metric-not-a-map": vector({"metric": ["agent", "a1"], "value": [1000.0, "7"]}),
    "series-not-a-map": vector(7, 8),
    "matrix-for-a-vector": prom_ok({"resultType": "matrix", "result": []}),
    "broken-json": Behaviour(body=b'{"status": "success", "data": {"resultType": "vec'),
    "not-utf8": Behaviour(body=b'{"status": "success", "data": "\xff\xfe"}'),
    "nan": vector(sample("NaN"), sample("NaN", "a2")),
    "inf": vector(sample("+Inf"), sample("+Inf", "a2")),
    "empty-result": vector(),
    "data-not-a-map": prom_ok("vector"),
    "error-status": Behaviour(status=400, body=b'{"status": "error", "error": "parse error"}'),
}


def policy(retries: int = 1) -> GatePolicy:
    info = {a: AgentInfo(a, "fast", "east") for a in AGENTS}
    return GatePolicy(gates=(GATE,), tier_gates={}, info=info, retries=retries,
                      retry_delay_s=0.0, inconclusive_wait_s=0.0, poll_s=1.0)  # fmt: skip


async def _judge(server: SickServer, retries: int = 1, timeout: float = 2.0) -> list[object]:
    source = PrometheusSource(server.url, timeout=timeout)
    runner = GateRunner(source, policy(retries), FakeClock())
    notes: list[tuple[str, dict[str, object]]] = []
    try:
        await runner.open(0, lambda kind, **kw: notes.append((kind, kw)))
        return list(await runner.judge(0, ["a1"], ["a1"], lambda k, **kw: notes.append((k, kw))))
    finally:
        await source.close()


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_counter_answer_fails_the_gates_after_retries(case: str) -> None:
    """Any counter query answered badly: retried, then every gate FAILs, the reason named."""
    bad = MALFORMED[case]

    def answer(path: str, query: dict[str, str]) -> Behaviour:
        if query.get("query") == "time()":
            return prom_time(1000.0 + 60 * len(server.requests))
        return bad

    with SickServer(answer) as server:
        verdicts = await _judge(server)
        asked = [q for _, q in server.requests if q.get("query") != "time()"]
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]  # type: ignore[attr-defined]
    reason = verdicts[0].reason  # type: ignore[attr-defined]
    assert "no measurement" in reason
    assert "failed 2 time(s)" in reason  # the first try and one retry
    assert len(asked) == 2


@pytest.mark.parametrize("case", ["string-sample", "nan", "empty-result", "series-not-a-map"])
async def test_a_malformed_clock_answer_fails_the_gates(case: str) -> None:
    """time() itself answered badly (a string, NaN, nothing): the gates FAIL, named."""
    bad = {
        "string-sample": prom_ok({"resultType": "scalar", "result": [1000.0, "soon"]}),
        "nan": prom_ok({"resultType": "scalar", "result": [1000.0, "NaN"]}),
        "empty-result": vector(),
        "series-not-a-map": vector("x"),
    }[case]
    with SickServer(lambda path, query: bad) as server:
        verdicts = await _judge(server)
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]  # type: ignore[attr-defined]
    assert "no measurement" in verdicts[0].reason  # type: ignore[attr-defined]


async def test_a_bucket_bound_that_is_not_a_number_fails_the_gates() -> None:
    """A histogram series with le="fast": a measurement error, not a crash."""
    counters = vector(sample("100"), sample("100", "a2"))
    last = vector(sample("999"), sample("999", "a2"))

    def answer(path: str, query: dict[str, str]) -> Behaviour:
        q = query.get("query", "")
        if q == "time()":
            return prom_time(1000.0 + 60 * len(server.requests))
        if "_bucket" in q:
            return vector(sample("5", le="fast"), sample("5", "a2", le="+Inf"))
        return last if "timestamp" in q else counters

    with SickServer(answer) as server:
        verdicts = await _judge(server)
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]  # type: ignore[attr-defined]
    assert "no measurement" in verdicts[0].reason  # type: ignore[attr-defined]


async def test_a_hung_prometheus_fails_the_gate_within_the_policys_limits() -> None:
    """Prometheus accepts and never answers: FAIL after (retries + 1) deadlines, not later."""
    with SickServer(lambda path, query: Behaviour(hang=True)) as server:
        started = time.monotonic()
        verdicts = await _judge(server, retries=1, timeout=0.5)
        took = time.monotonic() - started
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]  # type: ignore[attr-defined]
    assert "within 0.5s" in verdicts[0].reason  # type: ignore[attr-defined]
    assert took < 2 * 2 * 0.5 + 1.0  # open and judge each try twice, 0.5 s a try


async def test_a_trickling_prometheus_fails_the_gate_within_the_policys_limits() -> None:
    """Headers at once, then one byte every 0.2 s: the deadline holds for the whole body."""
    body = json.dumps({"status": "success", "data": {"resultType": "scalar",
                                                      "result": [1, "1"]}}).encode()  # fmt: skip
    with SickServer(lambda path, query: Behaviour(body=body, trickle_s=0.2)) as server:
        started = time.monotonic()
        verdicts = await _judge(server, retries=0, timeout=0.6)
        took = time.monotonic() - started
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]  # type: ignore[attr-defined]
    assert took < 2 * 0.6 + 1.0


class Exploding:
    """A MetricSource with a bug: open or measure raise something that is no SourceError."""

    name = "exploding"

    def __init__(self, where: str) -> None:
        self.where = where

    async def open(self, agents: Sequence[str]) -> object:
        if self.where == "open":
            raise RuntimeError("bug in open")
        return 0.0

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        if self.where == "measure":
            raise KeyError("bug in measure")
        return Measurement(1.0, {a: {"not": "a window"} for a in agents})  # type: ignore[misc]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("where", ["open", "measure", "windows"])
async def test_any_exception_inside_a_gate_run_is_a_failed_gate(where: str) -> None:
    """A bug anywhere in measuring or judging: the gates FAIL with the error, never a crash."""
    runner = GateRunner(Exploding(where), policy(retries=0), FakeClock())
    notes: list[str] = []
    await runner.open(0, lambda kind, **kw: notes.append(kind))
    verdicts = await runner.judge(0, ["a1"], ["a1"], lambda kind, **kw: notes.append(kind))
    assert [v.outcome for v in verdicts] == [Outcome.FAIL]
    assert verdicts[0].gate == GATE.name
