"""The auth_error_rate gate: the auth share of the errors, tested like error_rate (pure).

Also: every consumer that sums errors still sums every reason (an auth error is an
error for the error_rate gate), and the scrape path keeps the auth share apart.
"""

from __future__ import annotations

from reconciler.gates import AgentInfo, AgentWindow, Outcome, choose_pools, evaluate
from reconciler.gates.windows import window_problem
from reconciler.metrics.window import window_between
from reconciler.model.fleet import Gate
from reconciler.transport.metrics import AUTH_ERRORS, MetricSnapshot, parse_exposition, rates

AUTH_GATE = Gate(name="auth", metric="auth_error_rate", max=0.02, min_samples=200)


def _w(agent: str, tasks: float, errors: float, auth: float | None) -> AgentWindow:
    return AgentWindow(
        agent=agent, start=0.0, end=600.0, tasks=tasks, errors=errors, tokens_in=250.0 * tasks,
        tokens_out=150.0 * tasks, cost=0.001 * tasks, auth_errors=auth,
    )  # fmt: skip


def _judge(gate: Gate, canary: list[AgentWindow], baseline: list[AgentWindow]) -> object:
    names = {w.agent for w in canary} | {w.agent for w in baseline}
    info = {n: AgentInfo(n, "fast", "us-east", "sha") for n in names}
    unchanged = {w.agent: w for w in baseline}
    pools = choose_pools([w.agent for w in canary], info, unchanged, {}, gate.min_samples)
    return evaluate(gate, canary, pools)


def test_five_percent_auth_errors_with_enough_samples_fails() -> None:
    """A canary at 5% auth errors over 2000 tasks against max 2%: FAIL, significant."""
    canary = [_w("c1", 1000, 60, 50), _w("c2", 1000, 60, 50)]
    baseline = [_w("b1", 1000, 10, 0), _w("b2", 1000, 10, 0)]
    v = _judge(AUTH_GATE, canary, baseline)
    assert v.outcome is Outcome.FAIL, v.detail()
    assert "auth_error_rate significantly above the limit 0.02" in v.reason
    assert v.canary == 0.05 and v.threshold == 0.02


def test_zero_auth_errors_passes_even_with_other_errors() -> None:
    """0% auth errors passes although 3% of the tasks fail for other reasons."""
    canary = [_w("c1", 1000, 30, 0), _w("c2", 1000, 30, 0)]
    v = _judge(AUTH_GATE, canary, [_w("b1", 1000, 10, 0)])
    assert v.outcome is Outcome.PASS, v.detail()
    assert v.canary == 0.0


def test_too_few_samples_waits_like_error_rate() -> None:
    """Every task refused, but 50 of the 200 tasks needed: INCONCLUSIVE (never a pass),
    exactly as error_rate answers the same windows."""
    canary = [_w("c1", 50, 50, 50)]
    v = _judge(AUTH_GATE, canary, [])
    assert v.outcome is Outcome.INCONCLUSIVE, v.detail()
    assert "too few samples: 50 of the 200 needed" in v.reason
    errors = Gate(name="e", metric="error_rate", max=0.02, min_samples=200)
    assert _judge(errors, canary, []).outcome is Outcome.INCONCLUSIVE


def test_a_ratio_against_the_baseline_uses_the_auth_share() -> None:
    """max_ratio 2 x a baseline at 1% auth errors (and 3% other errors): 4% auth errors
    fail; 1% pass although the canary's errors (4%) match the baseline's."""
    gate = Gate(name="auth", metric="auth_error_rate", max_ratio=2.0, min_samples=200)
    baseline = [_w(f"b{i}", 1000, 40, 10) for i in range(4)]
    bad = _judge(gate, [_w("c1", 1000, 40, 40), _w("c2", 1000, 40, 40)], baseline)
    assert bad.outcome is Outcome.FAIL, bad.detail()
    assert bad.baseline == 0.01
    good = _judge(gate, [_w("c1", 1000, 40, 10), _w("c2", 1000, 40, 10)], baseline)
    assert good.outcome is Outcome.PASS, good.detail()


def test_an_agent_without_the_auth_series_is_inconclusive() -> None:
    """A canary agent exporting no task_errors_total{reason="auth"}: INCONCLUSIVE, named."""
    v = _judge(AUTH_GATE, [_w("c1", 1000, 0, 0), _w("c2", 1000, 0, None)], [])
    assert v.outcome is Outcome.INCONCLUSIVE, v.detail()
    assert 'task_errors_total{reason="auth"}' in v.reason and "c2" in v.reason


def test_auth_errors_above_errors_make_the_window_unusable() -> None:
    assert window_problem(_w("a", 100, 5, 6), agent="a") is not None
    assert window_problem(_w("a", 100, 5, float("nan")), agent="a") is not None
    assert window_problem(_w("a", 100, 5, 5), agent="a") is None


def test_the_error_rate_gate_sees_auth_errors_as_errors() -> None:
    """10% of tasks refused a key: the error_rate gate (max 5%) fails on them too."""
    gate = Gate(name="e", metric="error_rate", max=0.05, min_samples=200)
    v = _judge(gate, [_w("c1", 1000, 100, 100)], [])
    assert v.outcome is Outcome.FAIL, v.detail()


def _exposition(auth: int, other: int, tasks: int, *, with_reason: bool = True) -> str:
    errors = (
        f'task_errors_total{{agent="a",reason="auth"}} {auth}\n'
        f'task_errors_total{{agent="a",reason="task"}} {other}\n'
        if with_reason
        else f'task_errors_total{{agent="a"}} {auth + other}\n'
    )
    return (
        "# TYPE tasks_total counter\n"
        f'tasks_total{{agent="a"}} {tasks}\n'
        "# TYPE task_errors_total counter\n" + errors + "# TYPE tokens_in_total counter\n"
        f'tokens_in_total{{agent="a"}} {tasks * 250}\n'
        "# TYPE tokens_out_total counter\n"
        f'tokens_out_total{{agent="a"}} {tasks * 150}\n'
        "# TYPE cost_usd_total counter\n"
        f'cost_usd_total{{agent="a"}} {tasks * 0.001}\n'
        "# TYPE task_latency_seconds histogram\n"
        f'task_latency_seconds_bucket{{agent="a",le="1.0"}} {tasks}\n'
        f'task_latency_seconds_bucket{{agent="a",le="+Inf"}} {tasks}\n'
        f'task_latency_seconds_count{{agent="a"}} {tasks}\n'
        f'task_latency_seconds_sum{{agent="a"}} {tasks * 0.5}\n'
    )


def _snap(text: str, at: float) -> MetricSnapshot:
    snap = parse_exposition(text, at=at, agent="a")
    assert isinstance(snap, MetricSnapshot), snap
    return snap


def test_a_scrape_sums_every_reason_and_keeps_the_auth_share() -> None:
    """errors = auth + other reasons (error rate, status and gates); auth apart."""
    before, after = (
        _snap(_exposition(2, 3, 100, with_reason=True), 0.0),
        _snap(_exposition(12, 8, 300, with_reason=True), 10.0),
    )
    assert after.values["task_errors_total"] == 20 and after.values[AUTH_ERRORS] == 12
    r = rates(before, after)
    assert not isinstance(r, str) and getattr(r, "error_rate", None) == 15 / 200
    w = window_between("a", before, after)
    assert isinstance(w, AgentWindow)
    assert (w.tasks, w.errors, w.auth_errors) == (200, 15, 10)


def test_a_scrape_without_reasons_leaves_the_auth_share_unknown() -> None:
    before = _snap(_exposition(0, 3, 100, with_reason=False), 0.0)
    after = _snap(_exposition(0, 8, 300, with_reason=False), 10.0)
    w = window_between("a", before, after)
    assert isinstance(w, AgentWindow)
    assert (w.errors, w.auth_errors) == (5, None)
