"""One redactor for every text that leaves the process: secret values never get out.

The secret store registers each value it resolves (and the fleet key); every sink —
the terminal (stdout and stderr are wrapped by the CLI), the journal, incident reports,
saved tracebacks — passes its text through `scrub()` first. A value is removed in the
forms it is likely to leak in: raw, base64 (standard and URL-safe, padded or not), hex
(either case) and URL-encoded (quote and quote_plus). Values shorter than `MIN_LENGTH`
are not registered: redacting "1" or "on" everywhere would garble every message and
protect nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

MIN_LENGTH: Final = 6
MASK: Final = "<redacted>"


def forms(value: str) -> set[str]:
    """The spellings of `value` a leak is likely to take."""
    raw = value.encode()
    b64 = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    hexed = binascii.hexlify(raw).decode()
    out = {value, b64, b64.rstrip("="), url, url.rstrip("="), hexed, hexed.upper()}
    out |= {quote(value, safe=""), quote_plus(value, safe="")}
    return {f for f in out if len(f) >= MIN_LENGTH}


class Redactor:
    """Removes registered secret values from text; add values as they are resolved."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | bytes]) -> None:
        """Register secret values (str, or bytes decoded as UTF-8, invalid bytes skipped)."""
        for v in values:
            text = v.decode("utf-8", "ignore") if isinstance(v, bytes) else v
            text = text.strip()
            if len(text) >= MIN_LENGTH:
                self._forms |= forms(text)
        # longest first, so a value's base64 is not half-masked by a shorter value
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def scrub(self, text: str) -> str:
        """`text` with every registered value, in every form, replaced by <redacted>."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def clear(self) -> None:
        self._forms.clear()
        self._pattern = None


# The process's redactor: the secret store feeds it, every output sink reads it.
REDACTOR: Final = Redactor()


def scrub(text: str) -> str:
    """The process redactor applied to `text`."""
    return REDACTOR.scrub(text)
