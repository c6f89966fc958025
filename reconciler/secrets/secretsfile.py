"""The box's secrets file: per secret, the `current` value and, during a rotation, `next`.

    {"anthropic_api_key": {"current": "sk-...", "next": "sk-..."}, "kb_token": {"current": "..."}}

Canonical JSON (sorted keys, two-space indent, trailing newline), mode 0600 on the box
(schemas/secrets-file.schema.json). A file written before rotation existed holds plain
strings (`{"NAME": "value"}`); it reads as `current` only.

Which value an agent uses depends on the secret's direction (secrets/index.yaml):
an outbound credential (a key the agent sends) is used as `next` as soon as one is
staged, `current` kept only for rollback; an inbound credential (a token the agent
checks) is accepted in either form while both are present.

Pure: no value ever reaches a `repr`, an exception message or a log from here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

Direction = Literal["outbound", "inbound"]


class SecretsFileError(ValueError):
    """The bytes are not a secrets file; the message names the problem, never a value."""


class Slot:
    """One secret's values on a box: `current`, and `next` while a rotation stages it."""

    __slots__ = ("current", "next")

    def __init__(self, current: str, next: str | None = None) -> None:
        self.current = current
        self.next = next

    def __repr__(self) -> str:
        return f"Slot(current=<redacted>, next={'<redacted>' if self.next else None})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slot) and (self.current, self.next) == (other.current, other.next)

    def __hash__(self) -> int:
        return hash((self.current, self.next))

    def in_use(self, direction: Direction = "outbound") -> str:
        """The value an outbound agent sends (`next` once staged); for an inbound secret,
        the primary of the accepted values (`current`)."""
        if direction == "outbound" and self.next is not None:
            return self.next
        return self.current

    def accepted(self) -> frozenset[str]:
        """The values an inbound agent accepts: both while a rotation is staged."""
        return frozenset(v for v in (self.current, self.next) if v is not None)

    def values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.current, self.next) if v is not None)


def render_secrets_file(slots: Mapping[str, Slot]) -> bytes:
    """The secrets file's bytes for `slots`: canonical JSON, sorted, trailing newline."""
    doc: dict[str, dict[str, str]] = {}
    for name in sorted(slots):
        slot = slots[name]
        entry = {"current": slot.current}
        if slot.next is not None:
            entry["next"] = slot.next
        doc[name] = entry
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


def parse_secrets_file(data: bytes) -> dict[str, Slot]:
    """The slots of a secrets file's bytes (plain-string entries read as `current`).

    Raises:
        SecretsFileError: not a JSON object of the expected shape (no value is quoted).
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SecretsFileError("the secrets file is not JSON") from None
    if not isinstance(doc, dict):
        raise SecretsFileError("the secrets file does not hold a JSON object")
    out: dict[str, Slot] = {}
    for name, entry in doc.items():
        if isinstance(entry, str):
            out[name] = Slot(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("current"), str):
            raise SecretsFileError(f"secret {name!r}: expected {{'current': ..., 'next': ...}}")
        nxt = entry.get("next")
        if nxt is not None and not isinstance(nxt, str):
            raise SecretsFileError(f"secret {name!r}: 'next' is not a string")
        out[name] = Slot(entry["current"], nxt)
    return out
