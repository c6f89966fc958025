"""Shape checks of reconciler's own files: pydantic errors -> ConfigErrors with spans.

The models are the JSON Schemas in schemas/ (generated from them), so editors
and this check agree. Messages name type confusion precisely ("the string
'25'") and suggest the nearest known key for a typo.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.config.errors import ConfigError
from reconciler.config.load import Doc
from reconciler.config.secretscan import clip, quoted, shown_key

M = TypeVar("M", bound=BaseModel)

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "list_type": "a list",
    "dict_type": "a map",
    "model_type": "a map",
    "model_attributes_type": "a map",
}


def describe(value: Any, path: tuple[int | str, ...] = ()) -> str:
    """A value as an error message should name it: its YAML type and its text, cut (and
    redacted when it, or its field's name, looks like a credential)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {quoted(value, path)}"
    if isinstance(value, float):
        return f"the number {quoted(value, path)}"
    if isinstance(value, str):
        return f"the string {quoted(value, path)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return quoted(value, path)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
    return found


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (sub)model that holds `loc`'s last key."""
    current: list[type[BaseModel]] = [model]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for m in current:
            field = m.model_fields.get(part)
            if field is not None:
                nxt.extend(_models_in(field.annotation))
        if nxt:
            current = nxt
    return sorted({name for m in current for name in m.model_fields})


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        name = shown_key(part)
        out += f"[{part}]" if isinstance(part, int) else (f".{name}" if out else name)
    return out


def _real_loc(err: ErrorDetails) -> tuple[int | str, ...]:
    # pydantic adds union-member names (e.g. 'int', 'str') into loc; keep only real keys.
    return tuple(p for p in err["loc"] if isinstance(p, int) or not _is_union_tag(p))


def _meant(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The known key an unknown key at `loc` most likely misspells, if any is close."""
    near = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc), n=1, cutoff=0.6)
    return near[0] if near else None


def _to_error(model: type[BaseModel], doc: Doc, err: ErrorDetails) -> ConfigError:
    loc = _real_loc(err)
    span = doc.loc.find(tuple(loc))
    kind = err["type"]
    where = _dotted(loc) or "the file"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        near = _meant(model, loc)
        hint = (
            f"; did you mean {near!r}?"
            if near
            else f"; known keys: {', '.join(_fields_at(model, loc))}"
        )
        return ConfigError(span, "schema.unknown-key", f"unknown key {quoted(key)}{hint}")
    if kind == "missing":
        return ConfigError(span, "schema.required", f"{where} is required")
    if kind in _TYPE_NAMES:
        got = describe(err.get("input"), loc)
        return ConfigError(span, "schema.type", f"{where}: expected {_TYPE_NAMES[kind]}, got {got}")
    hint = ""
    value = err.get("input")
    if kind == "literal_error" and isinstance(value, str):
        allowed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    msg = clip(str(err["msg"]))
    return ConfigError(span, "schema.value", f"{where}: {msg} (got {describe(value, loc)}){hint}")


def _is_union_tag(part: str) -> bool:
    # pydantic names union members in loc like 'int', 'str', 'function-after[...]', 'list[...]'.
    return part in {"int", "str", "float", "bool"} or "[" in part or part.startswith("constrained-")


def check_shape(model: type[M], doc: Doc) -> tuple[M | None, list[ConfigError]]:
    """Validate a loaded file against its model; on failure, every error with its span."""
    try:
        return model.model_validate(doc.value if doc.value is not None else {}), []
    except ValidationError as exc:
        # One error per place: a union reports each member's failure, the first says enough.
        errors: dict[tuple[str, int, int], ConfigError] = {}
        found = exc.errors()
        # A required key that an unknown key beside it misspells is that one error, not two.
        meant = {
            (*loc[:-1], near)
            for loc, near in (
                (loc, _meant(model, loc))
                for loc in (_real_loc(e) for e in found if e["type"] == "extra_forbidden")
            )
            if near is not None
        }
        # An unknown key first: at the place of a missing one, its did-you-mean says more.
        for err in sorted(found, key=lambda e: e["type"] != "extra_forbidden"):
            if err["type"] == "missing" and _real_loc(err) in meant:
                continue
            ce = _to_error(model, doc, err)
            errors.setdefault((ce.where.file, ce.where.line, ce.where.column), ce)
        return None, list(errors.values())


FieldPath = tuple[str, ...]


def _drop(data: dict[str, Any], path: FieldPath) -> bool:
    """Remove the value at `path` from nested maps; False when there is nothing to remove."""
    parent: Any = data
    for part in path[:-1]:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if isinstance(parent, dict) and path[-1] in parent:
        del parent[path[-1]]
        return True
    return False


@dataclass(frozen=True)
class Salvaged(Generic[M]):
    """What is left of a value that broke its model once the bad parts are removed."""

    model: M | None  # None: a required key cannot be salvaged
    value: dict[str, Any]  # the value less what was removed
    dropped: frozenset[FieldPath]  # the paths removed; () when nothing valid is left


def salvage(model: type[M], value: Any, fill: Mapping[str, Any] | None = None) -> Salvaged[M]:
    """The valid part of a file that failed its shape check, with defaults for the rest.

    Once the file's own errors are reported, later checks still need its settings:
    each value that breaks the model is removed so its field takes its default (a
    list goes as a whole, since a list with an entry missing means something else;
    a map that lacks a required key goes as a whole), and a required top-level key
    takes its `fill` stand-in.
    """
    fill = dict(fill or {})
    data: dict[str, Any] = copy.deepcopy(value) if isinstance(value, dict) else {}
    dropped: set[FieldPath] = set() if isinstance(value, dict | None) else {()}
    # Each round removes at least one value, so this ends; the bound is only a backstop.
    for _ in range(1000):
        try:
            return Salvaged(model.model_validate(data), data, frozenset(dropped))
        except ValidationError as exc:
            errors = exc.errors()
        changed = False
        for err in errors:
            loc = _real_loc(err)
            cut = next((i for i, p in enumerate(loc) if isinstance(p, int)), len(loc))
            path = tuple(str(p) for p in loc[:cut])
            if err["type"] == "missing" and cut == len(loc):
                path = path[:-1]  # the map without its required key
            if path and _drop(data, path):
                dropped.add(path)
                changed = True
            elif not path and loc and str(loc[0]) in fill:
                key = str(loc[0])
                if data.get(key) != fill[key]:
                    data[key] = fill[key]
                    dropped.add((key,))
                    changed = True
        if not changed:
            break
    return Salvaged(None, data, frozenset({*dropped, ()}))
