"""Encrypted secret files in a pull request: which changed, and who may decrypt them.

A pull request can change a secret without touching any config file: a new
`secrets/NAME.age` is a new value on every box whose payload refers to `{secret: NAME}`
once merged, and a new `secrets/recipients.txt` changes who can decrypt every secret
written after it. Neither may read as "No changes". Pure: file bytes in (ciphertext and
public keys, never a value), changes out; whether a value really changed is decided by
the caller, which may hold an identity to decrypt both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reconciler.diff.model import (
    REDACTED,
    ChangeKind,
    FieldChange,
    SecretFileChange,
    SecretValueCheck,
)

SECRETS_DIR: Final = "secrets/"
AGE_SUFFIX: Final = ".age"
RECIPIENTS: Final = "secrets/recipients.txt"
_IDENTITY: Final = "AGE-SECRET-KEY-"  # a secret key pasted where public keys belong


def secret_name(rel: str) -> str | None:
    """`secrets/NAME.age` -> NAME; None for any other path."""
    if rel.startswith(SECRETS_DIR) and rel.endswith(AGE_SUFFIX) and rel.count("/") == 1:
        return rel[len(SECRETS_DIR) : -len(AGE_SUFFIX)] or None
    return None


def changed_secrets(base: Mapping[str, bytes], head: Mapping[str, bytes]) -> dict[str, ChangeKind]:
    """Secret name -> added, removed or changed, for every `secrets/NAME.age` that differs."""
    out: dict[str, ChangeKind] = {}
    for rel in sorted(base.keys() | head.keys()):
        name = secret_name(rel)
        if name is None:
            continue
        was, now = base.get(rel), head.get(rel)
        if was == now:
            continue
        out[name] = (
            ChangeKind.ADDED
            if was is None
            else ChangeKind.REMOVED
            if now is None
            else ChangeKind.CHANGED
        )
    return out


def secret_file_changes(
    kinds: Mapping[str, ChangeKind],
    checks: Mapping[str, tuple[SecretValueCheck, str | None]],
    users: Mapping[str, int],
) -> tuple[SecretFileChange, ...]:
    """The changes, by name: `checks` says what the caller could tell of each value (absent:
    not checked), `users` how many agents refer to each secret."""
    out = []
    for name, kind in sorted(kinds.items()):
        value, note = checks.get(name, (SecretValueCheck.NOT_CHECKED, None))
        if kind is not ChangeKind.CHANGED and value is SecretValueCheck.SAME:
            value = SecretValueCheck.CHANGED  # a file that appears or goes is never "the same"
        out.append(
            SecretFileChange(
                name=name,
                path=f"{SECRETS_DIR}{name}{AGE_SUFFIX}",
                kind=kind,
                value=value,
                agents=users.get(name, 0),
                note=note,
            )
        )
    return tuple(out)


def _recipients(data: bytes | None) -> list[str]:
    """The public keys of a recipients file (comments and blanks dropped, as age reads it)."""
    text = (data or b"").decode("utf-8", errors="replace")
    keys = [s for s in (line.split("#", 1)[0].strip() for line in text.splitlines()) if s]
    return [
        f"{REDACTED} (an age identity, a secret key: never a recipient)"
        if k.upper().startswith(_IDENTITY)
        else k
        for k in keys
    ]


def recipients_change(
    base: Mapping[str, bytes], head: Mapping[str, bytes]
) -> tuple[FieldChange, ...]:
    """[access]: each age public key added to or removed from the list secrets are encrypted
    to (who can decrypt what is written after the merge). Public keys only: an identity
    pasted there shows as redacted."""
    was, now = _recipients(base.get(RECIPIENTS)), _recipients(head.get(RECIPIENTS))
    removed = [FieldChange(path=("secrets", "recipients"), kind=ChangeKind.REMOVED, old=k,
                           old_source=RECIPIENTS, source=RECIPIENTS, access=True)
               for k in was if k not in now]  # fmt: skip
    added = [FieldChange(path=("secrets", "recipients"), kind=ChangeKind.ADDED, new=k,
                         source=RECIPIENTS, access=True)
             for k in now if k not in was]  # fmt: skip
    return (*removed, *added)
