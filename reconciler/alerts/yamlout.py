"""A small deterministic YAML writer for the compiled files (block style, strings quoted)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

Value = str | int | float | bool | None | Mapping[str, "Value"] | Sequence["Value"]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid YAML double-quoted scalar
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _lines(value: object, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, Mapping) and v:
                out.append(f"{pad}{_key(k)}:")
                out.extend(_lines(v, indent + 2))
            elif isinstance(v, list | tuple) and v:
                out.append(f"{pad}{_key(k)}:")
                out.extend(_lines(v, indent))
            elif isinstance(v, Mapping):
                out.append(f"{pad}{_key(k)}: {{}}")
            elif isinstance(v, list | tuple):
                out.append(f"{pad}{_key(k)}: []")
            else:
                out.append(f"{pad}{_key(k)}: {_scalar(v)}")
        return out
    if isinstance(value, list | tuple):
        for item in value:
            sub = _lines(item, indent + 2)
            if isinstance(item, Mapping | list | tuple) and sub:
                out.append(f"{pad}- {sub[0].lstrip()}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_scalar(item)}")
        return out
    return [f"{pad}{_scalar(value)}"]


def dump(value: Mapping[str, object], header: str = "") -> bytes:
    """`value` as block YAML, keys in the given order, every string double-quoted."""
    head = "".join(f"# {line}\n" for line in header.splitlines())
    return (head + "\n".join(_lines(value, 0)) + "\n").encode()
