"""Where secret values and the fleet key come from at apply time: environment or files.

A value for secret NAME is `RECONCILER_SECRET_<NAME>` (upper-cased) in the
environment, else the file fleet.yaml's `secrets.files` names for it (relative
paths resolve against the repo root; `~` expands). Values are needed only to
apply; a missing one stops the rollout before anything is written, naming the
reference and where it was looked for, never showing any value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from reconciler.config.repo import Repo
from reconciler.model.fleet import FleetFile
from reconciler.secrets.desired import fingerprints, referenced
from reconciler.secrets.names import MissingSecretError, env_name
from reconciler.secrets.redact import REDACTOR
from reconciler.secrets.secretsfile import Slot
from reconciler.secrets.values import SecretValues


def repo_path(root: Path, value: str) -> Path:
    """A path from the repo's config: `~` expanded, relative paths against the repo root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def resolve_values(
    names: Iterable[str], fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None
) -> SecretValues:
    """The values of `names`; MissingSecretError lists every one that has none."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    missing: dict[str, str] = {}
    for name in sorted(set(names)):
        if env_name(name) in env:
            values[name] = env[env_name(name)]
            continue
        file = fleet.secrets.files.get(name)
        if file is None:
            missing[name] = f"set {env_name(name)} or name a file in fleet.yaml secrets.files"
            continue
        path = repo_path(root, file)
        try:
            values[name] = path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            missing[name] = f"set {env_name(name)}, or fix {path}: {exc.strerror}"
    REDACTOR.add(values.values())  # resolved: from now on no output may show them
    if missing:
        raise MissingSecretError(missing)
    return SecretValues(values)


def fleet_key(fleet: FleetFile, root: Path, env: Mapping[str, str] | None = None) -> bytes | None:
    """The fingerprint key (env var, else key file), or None: secret drift is then not checked.

    An empty (or blank) key is no key: it is None here, so no caller ever keys an HMAC
    with b"" (anyone could compute those fingerprints). An empty env var falls back to
    the key file.
    """
    env = os.environ if env is None else env
    key: bytes | None = None
    value = env.get(fleet.secrets.fleet_key_env, "")
    if value.strip():
        key = value.encode()
    elif fleet.secrets.fleet_key_file:
        path = repo_path(root, fleet.secrets.fleet_key_file)
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
    `override`: the slots a rotation writes for some secrets (their backend values unused).
    """
    key = fleet_key(repo.fleet, root, env)
    if key is None:
        return None
    refs = referenced(repo)
    try:
        names = set().union(*refs.values()) - set(override or {})
        values = resolve_values(names, repo.fleet, root, env)
    except MissingSecretError:
        return None
    return fingerprints(refs, values, key, override)
