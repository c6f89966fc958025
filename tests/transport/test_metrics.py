"""Prometheus text to snapshots and rates: table cases in tests/cases/metrics/."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from reconciler.transport.metrics import (
    MetricRates,
    MetricSnapshot,
    Problem,
    histogram_quantile,
    parse_exposition,
    rates,
)

CASES = Path(__file__).parent.parent / "cases" / "metrics"
RATES = json.loads((CASES / "rates.json").read_text())
PARSE = json.loads((CASES / "parse.json").read_text())


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _snapshot(side: dict[str, Any], agent: str | None) -> MetricSnapshot:
    snap = parse_exposition(_text(side["lines"]), at=side["at"], agent=agent)
    assert isinstance(snap, MetricSnapshot), snap
    return snap


@pytest.mark.parametrize("case", RATES, ids=[c["name"] for c in RATES])
def test_rates_case(case: dict[str, Any]) -> None:
    """Each case's two scrapes give the expected rates, or the expected problem."""
    got = rates(_snapshot(case["before"], case["agent"]), _snapshot(case["after"], case["agent"]))
    if "problem" in case["expect"]:
        assert isinstance(got, Problem), got
        assert got.reason == case["expect"]["problem"]
        assert got.detail
        return
    assert isinstance(got, MetricRates), got
    for field, want in case["expect"]["rates"].items():
        assert getattr(got, field) == (None if want is None else pytest.approx(want)), field


@pytest.mark.parametrize("case", PARSE, ids=[c["name"] for c in PARSE])
def test_parse_case(case: dict[str, Any]) -> None:
    """Each exposition parses to the expected snapshot, or to the expected problem."""
    got = parse_exposition(_text(case["lines"]), at=0.0, agent=case["agent"])
    if "problem" in case["expect"]:
        assert isinstance(got, Problem), got
        assert got.reason == case["expect"]["problem"]
        return
    want = case["expect"]["snapshot"]
    assert isinstance(got, MetricSnapshot)
    assert got.agent == want["agent"]
    for name, value in want["values"].items():
        assert got.get(name) == pytest.approx(value)
    assert [(le, c) for le, c in got.buckets] == [(float(le), c) for le, c in want["buckets"]]


def test_quantile_without_observations_is_none() -> None:
    """An empty histogram has no quantile (not zero)."""
    assert histogram_quantile(0.95, ((1.0, 0.0), (math.inf, 0.0))) is None
    assert histogram_quantile(0.95, ()) is None
