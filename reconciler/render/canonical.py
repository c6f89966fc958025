"""Payload -> bytes, the same bytes for the same payload, on any machine, forever.

Our own small YAML emitter rather than a library's, so that upgrading a
library never changes the bytes (and never makes the fleet look drifted).
Rules, pinned by RENDERER_VERSION and by golden files in tests/:

- block style, two-space indent, the payload's own key order, UTF-8, a trailing newline;
- a string is plain when it reads back as the same string under YAML 1.2 core
  *and* under YAML 1.1 (the dialect of PyYAML and many agents' readers, where
  `no`, `on`, `1_000` or `2024-01-01` are not strings), a literal block (`|` or
  `|-`) when it is multi-line text that round-trips, and JSON-style
  double-quoted otherwise, with characters a YAML stream may not hold raw
  (DEL, C1 controls, U+2028/2029, U+FEFF, U+FFFE/FFFF) escaped;
- null, true/false, integers, floats as `repr` with a dot in the mantissa (`1.0e+100`,
  which YAML 1.1 needs), `.inf`, `-.inf`, `.nan`;
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

# Version 2: YAML 1.1-ambiguous strings are quoted; strings starting with "@" or holding
# characters a YAML reader refuses are quoted or escaped (version 1 wrote unreadable YAML).
RENDERER_VERSION: Final = "2"

# "@" and "`" are reserved indicators: a plain scalar may hold them, never start with them.
_PLAIN_RE: Final = re.compile(r"[A-Za-z0-9_./(][A-Za-z0-9_./@() +=,-]*")
_FORBIDDEN_PLAIN: Final = (": ", " #")
# Characters a YAML stream may not hold raw (DEL, the C1 controls, U+FFFE/FFFF) or that a
# reader takes for a line break or a byte-order mark: escaped in double quotes.
_ESCAPE_RE: Final = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_BLOCK_BAD_RE: Final = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _quoted(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return _ESCAPE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


# Plain scalars that a YAML 1.1 reader resolves to something other than a string.
_YAML11_RE: Final = re.compile(
    r"""(?x)
    y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    |~|null|Null|NULL|=|<<
    |[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[\ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}.*)?
    """
)


def _plain_ok(text: str) -> bool:
    return (
        bool(_PLAIN_RE.fullmatch(text))
        and not text.endswith(" ")
        and not any(bad in text for bad in _FORBIDDEN_PLAIN)
        and plain_value(text) == text
        and isinstance(plain_value(text), str)
        and not _YAML11_RE.fullmatch(text)
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
        text = repr(value)
        # YAML 1.1 reads an exponent without a dot in the mantissa (1e+100) as a string.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
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
