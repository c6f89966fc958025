"""Selectors: `tier=fast,shard=us-east,region=eu-west` picks agents by field or label."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from reconciler.errors import InputError
from reconciler.model.agent import Agent

FIELDS = ("name", "tier", "shard", "host")


class SelectorError(InputError, ValueError):
    """A selector that cannot be parsed."""


def parse_selector(text: str | None) -> list[tuple[str, str]]:
    """`k=v,k2=v2` -> [(k, v), ...]; values may be globs (name=us-east-*)."""
    if not text:
        return []
    terms = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SelectorError(f"bad selector term {part!r}; write key=value, e.g. tier=fast")
        terms.append((key.strip(), value.strip()))
    return terms


def matches(agent: Agent, terms: list[tuple[str, str]]) -> bool:
    for key, pattern in terms:
        value = str(getattr(agent, key)) if key in FIELDS else agent.labels.get(key)
        if value is None or not fnmatchcase(value, pattern):
            return False
    return True


def select(agents: Iterable[Agent], terms: list[tuple[str, str]]) -> list[Agent]:
    return [a for a in agents if matches(a, terms)]
