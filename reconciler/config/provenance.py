"""Answers `explain AGENT FIELD`: a value, and the chain of file:line that set and overrode it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.config.layer import FieldPath, Setting
from reconciler.config.repo import EffectiveAgent

_MISSING = object()


@dataclass(frozen=True)
class Explanation:
    """One field of one agent: its value (if set) and every layer that wrote it, winner last."""

    path: FieldPath
    present: bool
    value: Any
    chain: tuple[Setting, ...]
    leaves: dict[FieldPath, tuple[Setting, ...]]


def _lookup(value: Any, path: FieldPath) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def resolve_field(ea: EffectiveAgent, field: str) -> FieldPath | None:
    """The path a user means by FIELD: as written, else inside the payload (`model`)."""
    path = tuple(field.split("."))
    effective = ea.agent.model_dump()
    for candidate in (path, ("config", *path)):
        if _lookup(effective, candidate) is not _MISSING or candidate in ea.provenance:
            return candidate
    return None


def explain(ea: EffectiveAgent, path: FieldPath) -> Explanation:
    """The explanation of `path` for an agent (the path must come from `resolve_field`)."""
    value = _lookup(ea.agent.model_dump(), path)
    depth = len(path)
    leaves = {
        p: chain for p, chain in ea.provenance.items() if len(p) > depth and p[:depth] == path
    }
    return Explanation(
        path=path,
        present=value is not _MISSING,
        value=None if value is _MISSING else value,
        chain=ea.provenance.get(path, ()),
        leaves=leaves,
    )


def short(setting: Setting) -> str:
    """file:line of a setting (explain's notation), or the layer's name for computed values."""
    if setting.span is None:
        return setting.layer
    return f"{setting.span.file}:{setting.span.line}"
