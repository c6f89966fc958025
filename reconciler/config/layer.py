"""Layering: fleet connection < base < tier < shard < agent, with provenance.

Maps merge deeply, lists (and scalars) replace, and an explicit null removes
the key. We always fold left from the lowest layer: pre-merging upper layers
would differ, since a null in one upper layer must also delete what a lower
layer set. Every path of the effective value maps to the chain of `Setting`s
that wrote it, lowest first, so the last one is the winner and the rest are
what it overrode. Pure: no I/O, inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.config.errors import SourceSpan
from reconciler.config.load import Loc

FieldPath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Setting:
    """One layer writing one path: where, which layer, and whether it was a null-delete."""

    span: SourceSpan | None
    layer: str
    deleted: bool = False

    def __str__(self) -> str:
        where = str(self.span) if self.span else self.layer
        return f"removed at {where}" if self.deleted else where


Provenance = dict[FieldPath, tuple[Setting, ...]]


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer's map, its locations (None for computed values) and its name."""

    name: str
    value: Mapping[str, Any]
    loc: Loc | None = None


def _kid(loc: Loc | None, key: str) -> Loc | None:
    if loc is None or loc.kids is None:
        return None
    return loc.kids.get(key)


def _record(prov: Provenance, path: FieldPath, value: Any, loc: Loc | None, layer: str) -> None:
    prov[path] = (*prov.get(path, ()), Setting(loc.span if loc else None, layer))
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(prov, (*path, key), sub, _kid(loc, key), layer)


def _delete(prov: Provenance, path: FieldPath, setting: Setting) -> None:
    depth = len(path)
    for known in [p for p in prov if p[:depth] == path]:
        prov[known] = (*prov[known], setting)
    if path not in prov:
        prov[path] = (setting,)


def _merge(
    low: Mapping[str, Any],
    up: Mapping[str, Any],
    loc: Loc | None,
    path: FieldPath,
    prov: Provenance,
    layer: str,
) -> dict[str, Any]:
    out = dict(low)
    for key, value in up.items():
        sub = (*path, key)
        kid = _kid(loc, key)
        if value is None:
            out.pop(key, None)
            _delete(prov, sub, Setting(kid.span if kid else None, layer, deleted=True))
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            prov[sub] = (*prov.get(sub, ()), Setting(kid.span if kid else None, layer))
            out[key] = _merge(out[key], value, kid, sub, prov, layer)
        else:
            out[key] = value
            _record(prov, sub, value, kid, layer)
    return out


def fold(
    layers: Iterable[Layer],
    start: Mapping[str, Any] | None = None,
    start_prov: Provenance | None = None,
) -> tuple[dict[str, Any], Provenance]:
    """Fold layers left onto `start` (default: empty); return the value and its provenance.

    `start`/`start_prov` let a caller reuse the fold of a shared prefix (fleet,
    base, tier, shard) for every agent; they are copied, never mutated.
    """
    value: dict[str, Any] = dict(start or {})
    prov: Provenance = dict(start_prov or {})
    for layer in layers:
        value = _merge(value, layer.value, layer.loc, (), prov, layer.name)
    return value, prov


def winner(prov: Provenance, path: FieldPath) -> Setting | None:
    """The setting that decided `path`'s effective value, if any layer set it."""
    chain = prov.get(path)
    return chain[-1] if chain else None
