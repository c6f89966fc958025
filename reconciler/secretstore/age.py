"""The age backend: secret values kept in the repo, encrypted, as secrets/NAME.age.

Format: armored age (`-----BEGIN AGE ENCRYPTED FILE-----`), X25519 recipients, one file
per secret holding exactly the value's UTF-8 bytes. Armored, so git and review tools
treat the files as text; any age tool (`age -d -i KEY secrets/NAME.age`) reads them.

- Recipients: secrets/recipients.txt in the repo, age public keys (`age1...`), one a
  line, `#` comments; every recipient (a team, CI) can decrypt each value.
- Identity: the env var `secrets.age.identity_env` (default RECONCILER_AGE_IDENTITY)
  holding the identity text, else the file `secrets.age.identity_file` (default none).
  Identity text is what `age-keygen` writes: `AGE-SECRET-KEY-1...` lines, `#` comments.

Errors name the file and the setting involved, never a value or a key; each identity
loaded and each value decrypted is registered with the redactor first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyrage

from reconciler.errors import InputError
from reconciler.model.fleet import FleetFile
from reconciler.secrets.redact import REDACTOR
from reconciler.secretstore.paths import repo_path
from reconciler.secretstore.repofile import read_secrets_file, secrets_path

RECIPIENTS_FILE: Final = "recipients.txt"
SUFFIX: Final = ".age"
IDENTITY_PREFIX: Final = "AGE-SECRET-KEY-1"
RECIPIENT_PREFIX: Final = "age1"


class AgeError(InputError):
    """The age backend cannot do what was asked: no identity, a wrong one, a broken file."""


def age_file(name: str) -> str:
    """The file name of secret `name`'s encrypted value in secrets/: NAME.age."""
    return f"{name}{SUFFIX}"


def age_path(root: Path, name: str) -> Path:
    """Where secret `name`'s encrypted value lives: root/secrets/NAME.age."""
    return secrets_path(root, age_file(name))


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, content) of each line that is not blank or a comment."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if body:
            out.append((number, body))
    return out


@dataclass(frozen=True, slots=True)
class Identities:
    """The age identities that decrypt, and the setting they came from (for messages)."""

    keys: tuple[Any, ...]  # pyrage.x25519.Identity (pyrage ships no type hints)
    setting: str


def parse_identities(text: str, setting: str) -> Identities:
    """The identities in `text` (age-keygen's format); AgeError naming `setting` and line."""
    keys = []
    for number, body in _lines(text):
        REDACTOR.add([body])  # a secret key: never shown, even in a message
        if not body.startswith(IDENTITY_PREFIX):
            raise AgeError(
                f"{setting}, line {number}: not an age identity (want {IDENTITY_PREFIX}..., "
                "as age-keygen writes)"
            )
        try:
            keys.append(pyrage.x25519.Identity.from_str(body))
        except pyrage.IdentityError:
            raise AgeError(
                f"{setting}, line {number}: not a valid age identity (a damaged key)"
            ) from None
    if not keys:
        raise AgeError(f"{setting} holds no age identity ({IDENTITY_PREFIX}...)")
    return Identities(tuple(keys), setting)


def load_identities(
    fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None
) -> Identities | None:
    """The identities from the env var secrets.age.identity_env, else the file
    secrets.age.identity_file; None when neither is set.

    Raises:
        AgeError: the file cannot be read, or holds no valid identity.
    """
    env = os.environ if env is None else env
    settings = fleet.secrets.age
    text = env.get(settings.identity_env, "")
    if text.strip():
        return parse_identities(text, f"the env var {settings.identity_env}")
    if not settings.identity_file:
        return None
    path = repo_path(root, settings.identity_file)
    setting = f"fleet.yaml secrets.age.identity_file ({path})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgeError(f"{setting} cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AgeError(f"{setting} is not a text file of age identities") from None
    return parse_identities(text, setting)


def no_identity(fleet: FleetFile, where: Path) -> AgeError:
    """The error for an encrypted value with no identity configured to decrypt it."""
    settings = fleet.secrets.age
    return AgeError(
        f"{where} is age-encrypted and no age identity is configured: set the env var "
        f"{settings.identity_env} to the identity, or fleet.yaml secrets.age.identity_file "
        "to a file holding it"
    )


def decrypt(data: bytes, identities: Identities, where: Path) -> str:
    """The value in an age file's bytes; AgeError naming `where` and the identity's setting."""
    try:
        plain = pyrage.decrypt(data, list(identities.keys))
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise AgeError(
                f"{where} cannot be decrypted with the identity from {identities.setting}: "
                "that identity is not one of its recipients (re-encrypt it with "
                "`reconcile secrets set`, or use an identity listed in "
                f"{RECIPIENTS_FILE} when it was written)"
            ) from None
        raise AgeError(
            f"{where} is not a readable age file (corrupt or truncated); "
            "write it again with `reconcile secrets set`"
        ) from None
    try:
        value = bytes(plain).decode("utf-8")
    except UnicodeDecodeError:
        raise AgeError(f"{where}: the decrypted value is not UTF-8 text") from None
    REDACTOR.add([value])
    return value


def read_value(name: str, root: Path, fleet: FleetFile, identities: Identities | None) -> str:
    """Secret `name`'s value from root/secrets/NAME.age.

    Raises:
        AgeError: no such file, no identity, a wrong identity, a broken file.
        ConfigError: the file or secrets/ is a symlink or not a regular file.
    """
    where = age_path(root, name)
    data = read_secrets_file(root, age_file(name))
    if data is None:
        raise AgeError(f"{where} does not exist")
    if identities is None:
        raise no_identity(fleet, where)
    return decrypt(data, identities, where)


def parse_recipients(text: str, where: Path) -> list[Any]:
    """The age public keys of a recipients file; AgeError naming `where` and the line."""
    out = []
    for number, body in _lines(text):
        if body.upper().startswith(IDENTITY_PREFIX):
            REDACTOR.add([body])
            raise AgeError(
                f"{where}, line {number} is an age identity (a secret key), not a recipient: "
                "remove it from the repo (and its history), replace that key, and list "
                "its public key (age-keygen -y) instead"
            )
        if not body.startswith(RECIPIENT_PREFIX):
            raise AgeError(f"{where}, line {number}: not an age public key (age1...)")
        try:
            out.append(pyrage.x25519.Recipient.from_str(body))
        except pyrage.RecipientError:
            raise AgeError(f"{where}, line {number}: not a valid age public key") from None
    if not out:
        raise AgeError(f"{where} lists no recipients: add age public keys (age1...), one a line")
    return out


def read_recipients(root: Path) -> list[Any]:
    """The repo's recipients (secrets/recipients.txt).

    Raises:
        AgeError: the file is missing, not text, or lists no valid public key.
        ConfigError: it is a symlink or not a regular file.
    """
    where = secrets_path(root, RECIPIENTS_FILE)
    data = read_secrets_file(root, RECIPIENTS_FILE)
    if data is None:
        raise AgeError(
            f"{where} does not exist: list the age public keys (age1...) that may decrypt "
            "the repo's secrets there, one a line"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AgeError(f"{where} is not a text file of age public keys") from None
    return parse_recipients(text, where)


def encrypt(value: str, recipients: list[Any]) -> bytes:
    """`value` encrypted to every recipient, armored."""
    data: bytes = pyrage.encrypt(value.encode("utf-8"), recipients, armored=True)
    return data


def recipient_of(identity: Any) -> str:
    """The public key (age1...) of an identity."""
    return str(identity.to_public())


def generate_identity() -> tuple[str, str]:
    """A new X25519 identity: (its secret key text, its public key age1...)."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), recipient_of(identity)
