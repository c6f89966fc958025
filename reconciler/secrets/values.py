"""Secret values: resolved at apply time, rendered to the box's secrets file, fingerprinted.

A value never gets a `str()` or `repr()` that shows it: `SecretValues` holds
them and renders only the secrets file's bytes. Fingerprints are an HMAC keyed
by the fleet key (which lives with the values, never in the repo), so a diff
can say "changed" without anything that could be brute-forced offline.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from reconciler.secrets.secretsfile import Slot, render_secrets_file


class SecretValues:
    """Resolved secret values; printing one shows only the names."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __repr__(self) -> str:
        return f"SecretValues(names={sorted(self._values)})"

    __str__ = __repr__

    def names(self) -> list[str]:
        return sorted(self._values)

    def subset(self, names: set[str]) -> SecretValues:
        return SecretValues({n: v for n, v in self._values.items() if n in names})

    def reveal(self, name: str) -> str:
        """The value itself: only for writing it to a box or checking it there."""
        return self._values[name]


def render_secrets(values: SecretValues) -> bytes:
    """The secrets file's bytes with every value as `current` (secrets/secretsfile.py)."""
    return render_secrets_file({name: Slot(values.reveal(name)) for name in values.names()})


def fingerprint(secrets_file: bytes, fleet_key: bytes) -> str:
    """A short HMAC-SHA256 of a secrets file's bytes, keyed by the fleet key."""
    return "hmac:" + hmac.new(fleet_key, secrets_file, hashlib.sha256).hexdigest()[:16]


def value_fingerprint(value: str, fleet_key: bytes) -> str:
    """A short HMAC-SHA256 of one secret's value (UTF-8), keyed by the fleet key.

    What `reconcile secrets list` shows per secret; it names no box and no file.
    """
    return fingerprint(value.encode(), fleet_key)
