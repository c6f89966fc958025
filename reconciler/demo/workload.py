"""What a loaded config makes a simulated agent do, per task (pure).

The agent's behaviour is a function of its config and secrets, so that a bad
change really trips the gates: the model sets prices and latency, max_tokens
and the prompt set output tokens, and an unknown model, a missing API key, or
a prompt holding the poison marker make tasks fail.

Prices are US dollars per token (the table says per million). Whether the API
key is good is the demo provider's answer, asked per tick (demo/provider.py):
it can be revoked while the agent runs; `Behaviour.api_key` is the key sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's price and speed."""

    usd_per_mtok_in: float
    usd_per_mtok_out: float
    base_latency_s: float
    s_per_token_out: float
    verbosity: float = 1.0  # how much of its budget the model tends to use, relative


PRICING: Final[Mapping[str, ModelPrice]] = {
    "claude-haiku-4": ModelPrice(0.80, 4.00, 0.30, 0.004),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00, 0.25, 0.003),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.60, 0.008),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 0.50, 0.007, verbosity=1.1),
    "claude-opus-4-1": ModelPrice(15.00, 75.00, 1.00, 0.015, verbosity=1.2),
}

POISON_MARKER: Final = "!!poison!!"
"""A prompt holding this string makes half of the agent's tasks fail."""

# task_errors_total{reason=...}: what failed tasks are counted as
REASON_AUTH: Final = "auth"  # no API key, or the provider refused it (401)
REASON_MODEL: Final = "model"  # unknown model (404)
REASON_TASK: Final = "task"  # anything else: the base rate, a poisoned prompt, a fault
ERROR_REASONS: Final = (REASON_AUTH, REASON_MODEL, REASON_TASK)
DEFAULT_MAX_TOKENS: Final = 1024
_USER_TOKENS_IN: Final = 250  # the task's own input, on top of the prompt
_FAILED_TASK_LATENCY_S: Final = 0.1

# Prompt phrases that change how long answers are: fraction of max_tokens used.
_VERBOSITY: Final = (("step by step", 0.45), ("three sentences", 0.12), ("brief", 0.12))
_DEFAULT_VERBOSITY: Final = 0.30


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Per-task means for an agent running one config."""

    model: str
    error_rate: float
    error_reason: str | None
    error_label: str  # the `reason` label of the errors error_rate makes (ERROR_REASONS)
    api_key: str | None = field(repr=False)  # the key sent (outbound: `next` once staged)
    latency_s: float
    failed_latency_s: float
    tokens_in: float
    tokens_out: float
    max_tokens: int
    usd_per_token_in: float
    usd_per_token_out: float
    memory_bytes: int


class ConfigRejected(ValueError):
    """The agent cannot run this config at all (the reload fails)."""


def _api_key(config: Mapping[str, Any], secrets: Mapping[str, str]) -> str | None:
    ref = config.get("api_key")
    if isinstance(ref, Mapping) and isinstance(ref.get("secret"), str):
        return secrets.get(ref["secret"])
    return ref if isinstance(ref, str) else None


def _verbosity(prompt: str) -> float:
    lowered = prompt.lower()
    for phrase, fraction in _VERBOSITY:
        if phrase in lowered:
            return fraction
    return _DEFAULT_VERBOSITY


def behaviour(
    config: Mapping[str, Any], secrets: Mapping[str, str], *, base_error_rate: float
) -> Behaviour:
    """The behaviour of an agent running `config` with `secrets`; ConfigRejected if it can't."""
    max_tokens = config.get("max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ConfigRejected(f"max_tokens must be a positive integer, got {max_tokens!r}")
    concurrency = config.get("concurrency", 1)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigRejected(f"concurrency must be a positive integer, got {concurrency!r}")
    prompt = config.get("prompt", "")
    if not isinstance(prompt, str):
        raise ConfigRejected("prompt must be a string")
    model = str(config.get("model", ""))
    price = PRICING.get(model)

    error_rate, reason, label = base_error_rate, None, REASON_TASK
    key = _api_key(config, secrets)
    if price is None:
        error_rate, reason, label = 1.0, f"unknown model {model!r}", REASON_MODEL
        price = PRICING["claude-haiku-4"]
    elif key is None:
        error_rate, reason, label = 1.0, "no API key", REASON_AUTH
    elif POISON_MARKER in prompt:
        error_rate, reason = max(error_rate, 0.5), "poisoned prompt"

    tokens_out = min(float(max_tokens), max_tokens * _verbosity(prompt) * price.verbosity)
    return Behaviour(
        model=model,
        error_rate=error_rate,
        error_reason=reason,
        error_label=label,
        api_key=key,
        latency_s=price.base_latency_s + price.s_per_token_out * tokens_out,
        failed_latency_s=_FAILED_TASK_LATENCY_S,
        tokens_in=_USER_TOKENS_IN + len(prompt) / 4,
        tokens_out=tokens_out,
        max_tokens=max_tokens,
        usd_per_token_in=price.usd_per_mtok_in / 1e6,
        usd_per_token_out=price.usd_per_mtok_out / 1e6,
        memory_bytes=180_000_000 + concurrency * 24_000_000,
    )
