"""Field-level diff of two parsed payloads (or settings maps), normalised.

We compare parsed values, never bytes: key order and YAML style do not make
a change. A type-strict walk of the two maps finds the differing paths (deepdiff,
used before, took `[False]` and `[0]` for equal), normalised as gitops-engine's
diff normalises before comparing:

- lists are atomic (layering replaces lists whole), so any change inside a
  list is reported as the whole list, old -> new;
- a `{secret: NAME}` reference is atomic too: the change is the reference;
- the kind is recomputed from the two values at the normalised path: added,
  removed, changed, or type-changed (JSON types: 1, 1.0 and true differ).

Pure; `diff_values(a, a) == []` and `patch(a, diff_values(a, b)) == b` (with
types: see `same`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.diff.model import ChangeKind, FieldPath

_ABSENT: Final = object()


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One normalised change between two maps; `old`/`new` are None when absent."""

    path: FieldPath
    kind: ChangeKind
    old: Any
    new: Any


def is_secret_ref(value: Any) -> bool:
    """Whether a value is a `{secret: NAME}` reference."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secret"), str)


def has_secret_ref(value: Any) -> bool:
    """Whether a value is, or holds anywhere inside, a secret reference."""
    if is_secret_ref(value):
        return True
    if isinstance(value, dict):
        return any(has_secret_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secret_ref(v) for v in value)
    return False


def secret_names(value: Any) -> set[str]:
    """The names of every secret a payload references."""
    if is_secret_ref(value):
        return {value["secret"]}
    if isinstance(value, dict):
        return set().union(*(secret_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_names(v) for v in value)) if value else set()
    return set()


def canonical(value: Any) -> str:
    """A type-strict, key-order-free text of a value: equal texts mean equal values."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def same(a: Any, b: Any) -> bool:
    """Type-strict equality (1, 1.0 and true differ; key order does not matter; nan == nan)."""
    return canonical(a) == canonical(b)


def _lookup(value: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _json_type(value: Any) -> str:
    return type(value).__name__


def _expand(path: FieldPath, was: Any, now: Any) -> list[FieldPath]:
    """The differing paths under `path`: maps are walked key by key; anything else (a list,
    a scalar, a secret reference) is compared whole, type-strict."""
    if not (isinstance(was, dict) and isinstance(now, dict)):
        return [path]
    if is_secret_ref(was) or is_secret_ref(now):
        return [path]
    out: list[FieldPath] = []
    for key in was.keys() | now.keys():
        a, b = was.get(key, _ABSENT), now.get(key, _ABSENT)
        if a is _ABSENT or b is _ABSENT or not same(a, b):
            out.extend(_expand((*path, key), a, b))
    return out


def _kind(old: Any, new: Any) -> ChangeKind:
    if old is _ABSENT:
        return ChangeKind.ADDED
    if new is _ABSENT:
        return ChangeKind.REMOVED
    if is_secret_ref(old) and is_secret_ref(new):
        return ChangeKind.CHANGED
    return ChangeKind.TYPE_CHANGED if _json_type(old) != _json_type(new) else ChangeKind.CHANGED


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ValueChange]:
    """Every change from `old` to `new`, sorted by path; empty when they are the same."""
    if same(old, new):
        return []
    paths = set(_expand((), dict(old), dict(new)))
    # A change inside another reported change (e.g. list, or a parent map replaced) folds in.
    ordered = sorted(paths)
    kept = [p for p in ordered if not any(p[: len(q)] == q and p != q for q in ordered)]
    out: list[ValueChange] = []
    for path in kept:
        was, now = _lookup(old, path), _lookup(new, path)
        if was is not _ABSENT and now is not _ABSENT and same(was, now):
            continue
        out.append(
            ValueChange(
                path=path,
                kind=_kind(was, now),
                old=None if was is _ABSENT else was,
                new=None if now is _ABSENT else now,
            )
        )
    return out


def patch(value: Mapping[str, Any], changes: Sequence[ValueChange]) -> dict[str, Any]:
    """`value` with `changes` applied: patch(a, diff_values(a, b)) equals b."""
    out: dict[str, Any] = copy.deepcopy(dict(value))
    for change in changes:
        *parents, leaf = change.path
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if change.kind is ChangeKind.REMOVED:
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(change.new)
    return out
