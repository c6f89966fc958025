"""Credentials pasted into config, found before they reach a box, a diff or a message.

Two detectors, both pure:

- `credential_kind(text)`: a known key format anywhere in a string: Anthropic
  (`sk-ant-`), OpenAI-style (`sk-`), GitHub (`ghp_`, `gho_`, ...), Slack
  (`xoxb-`, `xoxp-`, ...), an AWS access key id (`AKIA` + 16) or a PEM private key
  header. Any config value matching one is an error (rule `secret.plaintext`).
- `high_entropy(text)`: a string of at least `ENTROPY_MIN_CHARS` characters whose
  Shannon entropy is at least `ENTROPY_MIN_BITS` bits per character: random tokens
  look like this, words and paths do not. Only payload fields are checked, and a
  field annotated `x-not-secret: true` in the payload schema is not.

`quoted(value)` is how any message quotes a value: a secret-looking one (by its
field name or by either detector) as `<redacted>`, anything else cut to about
`QUOTE_CHARS` characters, so no message carries a whole value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

REDACTED: Final = "<redacted>"
QUOTE_CHARS: Final = 60
ENTROPY_MIN_CHARS: Final = 24
ENTROPY_MIN_BITS: Final = 4.0

_B: Final = r"(?<![A-Za-z0-9_-])"  # a key starts at a word boundary
CREDENTIALS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("an Anthropic API key (sk-ant-)", re.compile(_B + r"sk-ant-[A-Za-z0-9_-]{8,}")),
    ("an API key (sk-)", re.compile(_B + r"sk-[A-Za-z0-9_-]{16,}")),
    ("a GitHub token (ghp_)", re.compile(_B + r"gh[pousr]_[A-Za-z0-9]{20,}")),
    ("a GitHub token (github_pat_)", re.compile(_B + r"github_pat_[A-Za-z0-9_]{20,}")),
    ("a Slack token (xox?-)", re.compile(_B + r"xox[bpars]-[A-Za-z0-9-]{10,}")),
    ("an AWS access key id (AKIA...)", re.compile(r"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])")),
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
)
# Field names that hold credentials, by their last word: their values are never printed.
# (`kb.token`, `api_key`, `db_password`; not `max_tokens` or `token_budget`.)
_SECRET_WORDS: Final = frozenset(
    {"secret", "secrets", "token", "password", "passwd", "passphrase", "credential",
     "credentials", "cookie", "apikey", "pat", "bearer"}
)  # fmt: skip
_KEY_KINDS: Final = frozenset({"api", "private", "secret", "access", "signing", "encryption"})
_WORD_RE: Final = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def credential_kind(text: str) -> str | None:
    """What known credential format `text` contains, or None."""
    for kind, pattern in CREDENTIALS:
        if pattern.search(text):
            return kind
    return None


def entropy(text: str) -> float:
    """Shannon entropy of `text` in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def high_entropy(text: str) -> bool:
    """Whether `text` is long and random enough to be a token (see the module docstring)."""
    return len(text) >= ENTROPY_MIN_CHARS and entropy(text) >= ENTROPY_MIN_BITS


def secret_field(path: Iterable[str | int]) -> bool:
    """Whether a field path names a credential (`api_key`, `kb.token`, `password`, ...)."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return False
    words = [w.lower() for w in _WORD_RE.findall(names[-1])]
    if not words:
        return False
    if words[-1] in _SECRET_WORDS:
        return True
    return words[-1] == "key" and len(words) > 1 and words[-2] in _KEY_KINDS


def looks_secret(value: Any) -> bool:
    """Whether a value (or any string inside it) looks like a credential."""
    if isinstance(value, str):
        return credential_kind(value) is not None or high_entropy(value)
    if isinstance(value, dict):
        return any(looks_secret(k) or looks_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(looks_secret(v) for v in value)
    return False


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` cut to about `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} chars)"


def quoted(value: Any, path: Iterable[str | int] = ()) -> str:
    """A value as a message may quote it: redacted when secret-looking, else repr, cut."""
    if secret_field(path) or looks_secret(value):
        return REDACTED
    return clip(repr(value))


def quoted_path(value: Any) -> str:
    """A path as a message may quote it: paths look random to the entropy test, so only a
    known credential format in one is redacted."""
    text = repr(value)
    return REDACTED if credential_kind(text) is not None else clip(text)


def shown_key(key: str | int) -> str:
    """A map key or list index as a message names it in a field path: cut, or <redacted>."""
    if isinstance(key, int):
        return str(key)
    return REDACTED if looks_secret(key) else clip(key, 40)


def redact_text(text: str) -> str:
    """`text` with every known credential format in it replaced by <redacted>."""
    for _, pattern in CREDENTIALS:
        if pattern.search(text):
            text = pattern.sub(REDACTED, text)
    return text
