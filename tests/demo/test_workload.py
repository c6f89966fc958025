"""What a config makes the simulated agent do (table cases in tests/cases/demo/behaviour.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.demo.workload import ConfigRejected, behaviour

CASES = json.loads((Path(__file__).parents[1] / "cases/demo/behaviour.json").read_text())
BASE: dict[str, Any] = {
    "model": "claude-haiku-4",
    "prompt": "You are a customer-support agent for Acme.\n",
    "max_tokens": 512,
    "concurrency": 8,
    "api_key": {"secret": "anthropic_api_key"},
}
SECRETS = {"anthropic_api_key": "sk-demo-0123456789"}


def _edited(edit: dict[str, Any]) -> dict[str, Any]:
    config = {**BASE, **edit}
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_config_drives_behaviour(case: dict[str, Any]) -> None:
    """Errors, tokens, cost and latency follow the config, as the case says."""
    base = behaviour(BASE, SECRETS, base_error_rate=0.01)
    how = behaviour(_edited(case["edit"]), SECRETS, base_error_rate=0.01)
    if "error_rate" in case:
        lo, hi = case["error_rate"]
        assert lo <= how.error_rate <= hi
        if case["reason"] is None:
            assert how.error_reason is None
        else:
            assert case["reason"] in how.error_reason
    checks = {
        "tokens_out_ratio": how.tokens_out / base.tokens_out,
        "cost_out_ratio": how.usd_per_token_out / base.usd_per_token_out,
        "latency_ratio": how.latency_s / base.latency_s,
    }
    for key, ratio in checks.items():
        if key in case:
            lo, hi = case[key]
            assert lo <= ratio <= hi, (key, ratio)


@pytest.mark.parametrize("case", CASES["rejected"], ids=lambda c: c["name"])
def test_configs_the_agent_cannot_run_are_rejected(case: dict[str, Any]) -> None:
    """A config the agent cannot run at all makes the reload fail."""
    with pytest.raises(ConfigRejected):
        behaviour(_edited(case["edit"]), SECRETS, base_error_rate=0.01)
