"""Scrape windows: two snapshots of one agent become a window, or a reason it is unusable."""

from __future__ import annotations

from reconciler.gates import AgentWindow
from reconciler.metrics.promsource import selector
from reconciler.metrics.window import window_between
from reconciler.transport.metrics import MetricSnapshot

BUCKETS = ((0.5, 0.0), (float("inf"), 0.0))


def snap(at: float, tasks: float, agent: str | None = "a", errors: float = 0.0) -> MetricSnapshot:
    values = {"tasks_total": tasks, "task_errors_total": errors, "tokens_in_total": tasks * 10,
              "tokens_out_total": tasks * 5, "cost_usd_total": tasks * 0.01}  # fmt: skip
    buckets = ((0.5, tasks), (float("inf"), tasks))
    return MetricSnapshot(agent, at, values, buckets)


def test_increases_between_two_scrapes_make_the_window() -> None:
    """Counter increases and the bucket deltas become the window of the agent."""
    w = window_between("a", snap(0, 100, errors=1), snap(10, 160, errors=4))
    assert isinstance(w, AgentWindow)
    assert (w.tasks, w.errors, w.tokens_out, w.elapsed) == (60, 3, 300, 10)
    assert w.buckets[-1] == (float("inf"), 60)


def test_a_counter_reset_mid_window_is_never_a_window() -> None:
    """A counter that went down (the agent restarted) gives a reason, not numbers."""
    w = window_between("a", snap(0, 100), snap(10, 20))
    assert isinstance(w, str) and "counter-reset" in w


def test_another_agents_series_is_refused() -> None:
    """A snapshot labelled with another agent never counts for this one."""
    w = window_between("a", snap(0, 100, agent="b"), snap(10, 160, agent="b"))
    assert isinstance(w, str) and "'b'" in w


def test_prometheus_selector_matches_exactly_the_agents() -> None:
    """The label regex lists the agents, escaped for PromQL strings."""
    assert (
        selector("agent", ["us-east-fast-001", "a.b"])
        == '{agent=~"a\\\\.b|us\\\\-east\\\\-fast\\\\-001"}'
    )
