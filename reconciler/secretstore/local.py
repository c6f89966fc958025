"""Where secret values and the fleet key come from at apply time: env, files, the repo (age).

A value for secret NAME is looked up in this order, the first that has one wins:

1. env: `RECONCILER_SECRET_<NAME>` (upper-cased) in the environment;
2. file: the file fleet.yaml's `secrets.files` names for it (relative paths resolve
   against the repo root; `~` expands); a file named there that cannot be read is an
   error, not a reason to look further;
3. age: the repo's `secrets/NAME.age` (work tree), decrypted with the age identity
   (reconciler/secretstore/age.py).

Values are needed only to apply; a missing one stops the rollout before anything is
written, naming the reference and where it was looked for, never showing any value.
Every value resolved is registered with the redactor at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Literal

from reconciler.config.repo import Repo
from reconciler.errors import InputError
from reconciler.model.fleet import FleetFile
from reconciler.secrets.desired import fingerprints, referenced
from reconciler.secrets.names import MissingSecretError, env_name
from reconciler.secrets.redact import REDACTOR
from reconciler.secrets.secretsfile import Slot
from reconciler.secrets.values import SecretValues
from reconciler.secretstore import age
from reconciler.secretstore.paths import repo_path
from reconciler.secretstore.repofile import exists

Backend = Literal["env", "file", "age", "missing"]
BACKENDS: Final[tuple[Backend, ...]] = ("env", "file", "age", "missing")
FLEET_KEY_BESIDE_IDENTITY: Final = "fleet.key"

__all__ = [
    "BACKENDS",
    "Backend",
    "SecretSource",
    "SecretUnavailable",
    "backend_of",
    "desired_fingerprints",
    "fleet_key",
    "repo_path",
    "resolve_values",
]


class SecretUnavailable(InputError):
    """One secret's value cannot be had from its backend; the message says where it looked.

    `missing`: there is no value (nothing set, or the named file does not exist), as
    opposed to a backend that failed (unreadable file, wrong identity, broken file).
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class SecretSource:
    """The values of one fleet's secrets, looked up env → file → age (identity loaded once)."""

    def __init__(self, fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None) -> None:
        self.fleet = fleet
        self.root = root
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._identities: age.Identities | None = None
        self._identity_error: age.AgeError | None = None
        self._loaded = False

    def backend_of(self, name: str) -> Backend:
        """Which backend holds `name`'s value (the first in the lookup order), or missing."""
        if env_name(name) in self.env:
            return "env"
        if name in self.fleet.secrets.files:
            return "file"
        if exists(self.root, age.age_file(name)):
            return "age"
        return "missing"

    def value(self, name: str) -> str:
        """`name`'s value, registered with the redactor.

        Raises:
            SecretUnavailable: no backend has it, or its backend fails (the message names
                the file or setting, never a value).
        """
        backend = self.backend_of(name)
        if backend == "env":
            value = self.env[env_name(name)]
        elif backend == "file":
            path = repo_path(self.root, self.fleet.secrets.files[name])
            try:
                value = path.read_text(encoding="utf-8").rstrip("\n")
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise SecretUnavailable(
                    f"set {env_name(name)}, or fix {path} (fleet.yaml secrets.files): {why}",
                    missing=isinstance(exc, FileNotFoundError),
                ) from None
        elif backend == "age":
            identities = None
            try:
                identities = self._identities_or_raise()
                value = age.read_value(name, self.root, self.fleet, identities)
            except InputError as exc:  # AgeError, or the repo's refusal of a link
                # no identity configured here (a CI job without one): the value is missing;
                # a wrong or broken identity, a corrupt file: the backend failed
                unset = identities is None and self._identity_error is None
                raise SecretUnavailable(str(exc), missing=unset) from None
        else:
            raise SecretUnavailable(
                f"set {env_name(name)}, name a file in fleet.yaml secrets.files, or write "
                f"{age.age_path(self.root, name)} (`reconcile secrets set {name}`)",
                missing=True,
            )
        REDACTOR.add([value])  # resolved: from now on no output may show it
        return value

    def _identities_or_raise(self) -> age.Identities | None:
        if not self._loaded:
            self._loaded = True
            try:
                self._identities = age.load_identities(self.fleet, self.root, self.env)
            except age.AgeError as exc:
                self._identity_error = exc
        if self._identity_error is not None:
            raise self._identity_error
        return self._identities


def backend_of(
    name: str, fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None
) -> Backend:
    """Where secret `name`'s value would come from: env, file, age, or missing."""
    return SecretSource(fleet, root, env).backend_of(name)


def resolve_values(
    names: Iterable[str], fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None
) -> SecretValues:
    """The values of `names` (env, then secrets.files, then secrets/NAME.age);
    MissingSecretError lists every one that has none, and why."""
    source = SecretSource(fleet, root, env)
    values: dict[str, str] = {}
    missing: dict[str, str] = {}
    failed = False
    for name in sorted(set(names)):
        try:
            values[name] = source.value(name)
        except SecretUnavailable as exc:
            missing[name] = str(exc)
            failed = failed or not exc.missing
    if missing:
        raise MissingSecretError(missing, failed=failed)
    return SecretValues(values)


def _key_file(fleet: FleetFile, root: Path) -> Path | None:
    """secrets.fleet_key_file, else fleet.key beside secrets.age.identity_file, else None."""
    if fleet.secrets.fleet_key_file:
        return repo_path(root, fleet.secrets.fleet_key_file)
    if fleet.secrets.age.identity_file:
        return repo_path(root, fleet.secrets.age.identity_file).with_name(FLEET_KEY_BESIDE_IDENTITY)
    return None


def fleet_key(fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None) -> bytes | None:
    """The fingerprint key, or None: secret drift is then "not checked".

    It lives with the values: the env var secrets.fleet_key_env, else the file
    secrets.fleet_key_file, else a file `fleet.key` beside the age identity file
    (secrets.age.identity_file), when there is one.

    An empty (or blank) key is no key: it is None here, so no caller ever keys an HMAC
    with b"" (anyone could compute those fingerprints). An empty env var falls back to
    the key file.
    """
    env = os.environ if env is None else env
    key: bytes | None = None
    value = env.get(fleet.secrets.fleet_key_env, "")
    if value.strip():
        key = value.encode()
    else:
        path = _key_file(fleet, root)
        if path is None:
            return None
        try:
            key = path.read_bytes().strip()
        except OSError:
            return None
    if not key or not key.strip():
        return None
    REDACTOR.add([key])
    return key


def desired_fingerprints(
    repo: Repo,
    root: Path,
    env: Mapping[str, str] | None = None,
    override: Mapping[str, Slot] | None = None,
) -> dict[str, str] | None:
    """agent -> fingerprint of the secrets file apply would write; None when not computable.

    Needs the fleet key and every referenced value; without them secrets are "not checked".
    A backend that fails (a wrong age identity, a corrupt file) raises MissingSecretError:
    a command must not report "no change" because it could not read a value.
    `override`: the slots a rotation writes for some secrets (their backend values unused).
    """
    key = fleet_key(repo.fleet, root, env)
    if key is None:
        return None
    refs = referenced(repo)
    try:
        names = set().union(*refs.values()) - set(override or {})
        values = resolve_values(names, repo.fleet, root, env)
    except MissingSecretError as exc:
        if exc.failed:  # a backend that fails must not read as "no secret changed"
            raise
        return None
    return fingerprints(refs, values, key, override)
