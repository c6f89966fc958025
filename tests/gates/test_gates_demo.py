"""Metric gates on a demo fleet through `apply`: the x6 output-tokens change and a poisoned
prompt are rolled back; a neutral change passes with its figures shown."""

from __future__ import annotations

from reconciler.demo.fleet import DemoFleet
from reconciler.rollout.phases import Outcome

from .conftest import apply, edit, figures, small_policy

FAST_TIER = "agents/tier-fast.yaml"


async def _at_head(fleet: DemoFleet) -> None:
    small_policy(fleet.repo)
    result, rec = await apply(fleet, gates=False)
    assert result.outcome is Outcome.DONE, rec.notes


async def test_six_times_the_output_tokens_is_rolled_back_by_the_gates(fleet: DemoFleet) -> None:
    """max_tokens x6 on tier fast: errors flat, output tokens x6 -> the gates fail wave 1."""
    await _at_head(fleet)
    edit(fleet.repo, FAST_TIER, "max_tokens: 512", "max_tokens: 3072", "tier fast: longer answers")
    result, rec = await apply(fleet)
    assert result.outcome is Outcome.ROLLED_BACK, rec.notes
    failed = {f["gate"]: f for f in figures(rec, "gates.failed") if f.get("outcome") == "fail"}
    assert "output-tokens" in failed
    out = failed["output-tokens"]
    assert out["canary"] > 4 * out["baseline"]
    assert abs(out["threshold"] - 2.0 * out["baseline"]) <= 1e-5 * out["threshold"]
    assert out["canary_samples"] >= 40
    errors = next(f for f in figures(rec, "gates.failed") if f["gate"] == "task-errors")
    assert errors["outcome"] == "pass"  # errors flat: only the tokens (and cost, latency) moved
    assert "gates failed in wave 1" in (result.state.trigger or "")


async def test_a_neutral_change_passes_every_gate_with_figures(fleet: DemoFleet) -> None:
    """A temperature change on tier fast passes all gates, each with canary and baseline figures."""
    await _at_head(fleet)
    edit(fleet.repo, FAST_TIER, "max_tokens: 512", "max_tokens: 512\n  temperature: 0.25", "t")
    result, rec = await apply(fleet)
    assert result.outcome is Outcome.DONE, [n for n in rec.notes if n[0].startswith("gates")]
    passed = figures(rec, "gates.passed")
    names = {f["gate"] for f in passed}
    assert {"task-errors", "latency", "cost", "output-tokens"} <= names
    for f in passed:
        if f["gate"] != "watchdog":
            assert f["outcome"] == "pass"
            assert f["canary"] is not None and f["baseline"] is not None


async def test_a_poisoned_prompt_raising_errors_is_rolled_back(fleet: DemoFleet) -> None:
    """A prompt that makes half the tasks fail trips the error-rate gate; everything is restored."""
    await _at_head(fleet)
    edit(fleet.repo, "agents/_base.yaml", "say so when you do not know.",
         "say so when you do not know. !!poison!!", "poisoned prompt")  # fmt: skip
    result, rec = await apply(fleet)
    assert result.outcome is Outcome.ROLLED_BACK
    failed = [f for f in figures(rec, "gates.failed") if f.get("outcome") == "fail"]
    assert any(f["gate"].startswith("task-errors") for f in failed), failed
