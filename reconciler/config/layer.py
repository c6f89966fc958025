"""Layering: fleet connection < base < tier < shard < agent, with provenance.

Maps merge deeply, lists (and scalars) replace, and an explicit null removes
the key (also inside a map that no lower layer had: the effective value never
holds a null from a layer's map). We always fold left from the lowest layer:
pre-merging upper layers would differ, since a null in one upper layer must
also delete what a lower layer set. Every path ever written maps to the chain
of `Setting`s that wrote it, lowest first, so the last one is the winner and
the rest are what it overrode; a path that a null (or a list or scalar
replacing its map) removed ends with a `deleted` setting. Pure: no I/O,
inputs are never mutated.
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


def _set(prov: Provenance, path: FieldPath, setting: Setting) -> None:
    prov[path] = (*prov.get(path, ()), setting)


def _delete(prov: Provenance, path: FieldPath, setting: Setting, *, below_only: bool) -> None:
    """Mark `path` (unless `below_only`) and every live path under it as removed by `setting`."""
    depth = len(path)
    for known in [p for p in prov if len(p) > depth and p[:depth] == path]:
        if not prov[known][-1].deleted:
            prov[known] = (*prov[known], setting)
    if not below_only:
        _set(prov, path, setting)


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
        span = kid.span if kid else None
        old = out.get(key)
        if value is None:
            out.pop(key, None)
            _delete(prov, sub, Setting(span, layer, deleted=True), below_only=False)
        elif isinstance(value, dict):
            # Merged onto the lower map, or onto {} when there is none, so that a null
            # inside a new map also removes its key rather than leaving a null value.
            _set(prov, sub, Setting(span, layer))
            out[key] = _merge(old if isinstance(old, dict) else {}, value, kid, sub, prov, layer)
        else:
            if isinstance(old, dict):  # a list or scalar replacing a map removes its keys
                _delete(prov, sub, Setting(span, layer, deleted=True), below_only=True)
            out[key] = value
            _set(prov, sub, Setting(span, layer))
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
