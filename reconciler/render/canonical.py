"""Payload -> bytes, the same bytes for the same payload, on any machine, forever.

Our own small YAML emitter rather than a library's, so that upgrading a
library never changes the bytes (and never makes the fleet look drifted).
Rules, pinned by RENDERER_VERSION and by golden files in tests/:

- block style, two-space indent, the payload's own key order, UTF-8, a trailing newline;
- a string is plain when it reads back as the same string under YAML 1.2 core,
  a literal block (`|` or `|-`) when it is multi-line text that round-trips,
  and JSON-style double-quoted otherwise;
- null, true/false, integers, floats as `repr` (`.inf`, `-.inf`, `.nan`);
- empty maps and lists as `{}` and `[]`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from typing import Any, Final

from reconciler.config.load import plain_value

RENDERER_VERSION: Final = "1"

_PLAIN_RE: Final = re.compile(r"[A-Za-z0-9_./@(][A-Za-z0-9_./@() +=,-]*")
_FORBIDDEN_PLAIN: Final = (": ", " #")
_LINE_BREAKS: Final = ("\u0085", "\u2028", "\u2029", "\ufeff")
_BLOCK_BAD_RE: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029\ufeff]")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _quoted(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    for ch in _LINE_BREAKS:
        out = out.replace(ch, f"\\u{ord(ch):04x}")
    return out


def _plain_ok(text: str) -> bool:
    return (
        bool(_PLAIN_RE.fullmatch(text))
        and not text.endswith(" ")
        and not any(bad in text for bad in _FORBIDDEN_PLAIN)
        and plain_value(text) == text
        and isinstance(plain_value(text), str)
    )


def _block_ok(text: str) -> bool:
    if "\n" not in text or _BLOCK_BAD_RE.search(text):
        return False
    body = text.removesuffix("\n")
    if body.endswith("\n") or body.startswith((" ", "\n")) or not body:
        return False
    return all(not line.endswith(" ") for line in body.split("\n"))


@functools.lru_cache(maxsize=1 << 16)
def _plain_ok_cached(text: str) -> bool:
    """`_plain_ok`, memoized: keys and values repeat across a fleet's payloads."""
    return _plain_ok(text)


def _string(text: str, indent: int) -> str:
    if _plain_ok_cached(text):
        return text
    if indent >= 0 and _block_ok(text):
        head = "|" if text.endswith("\n") else "|-"
        pad = " " * (indent + 2)
        lines = text.removesuffix("\n").split("\n")
        return head + "".join(f"\n{pad}{line}" if line else "\n" for line in lines)
    return _quoted(text)


def _scalar(value: Any, indent: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value, indent)
    raise TypeError(f"cannot render a {type(value).__name__}")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be strings, got {key!r}")
    return _string(key, -1)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    """Append the lines of a non-empty map or list, at `indent` spaces."""
    pad = " " * indent
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(sub, dict | list) and sub:
                out.append(f"{pad}{_key(key)}:")
                _emit(sub, indent + 2 if isinstance(sub, dict) else indent, out)
            else:
                out.append(f"{pad}{_key(key)}: {_inline(sub, indent)}")
        return
    for item in value:
        if isinstance(item, dict | list) and item:
            nested: list[str] = []
            _emit(item, indent + 2, nested)
            first = nested[0][indent + 2 :]
            out.append(f"{pad}- {first}")
            out.extend(nested[1:])
        else:
            out.append(f"{pad}- {_inline(item, indent)}")


def _inline(value: Any, indent: int) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value, indent)


def render_payload(payload: dict[str, Any]) -> bytes:
    """The canonical bytes of an agent's config payload."""
    if not payload:
        return b"{}\n"
    lines: list[str] = []
    _emit(payload, 0, lines)
    return ("\n".join(lines) + "\n").encode("utf-8")
