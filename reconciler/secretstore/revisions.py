"""Whether an encrypted secret changed between two revisions, without showing it.

A pull-request diff sees `secrets/NAME.age` differ; age encrypts afresh each time, so a
different file may hold the same value (a recipient was added and every file written
again). With an age identity at hand (the same settings and env apply uses; fleet.yaml
from the BASE revision, so a pull request cannot point us at its own identity file), both
sides are decrypted in memory and compared; the values are registered with the redactor
and never leave this module. Without one, the change is "not checked", and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.config.repo import Repo
from reconciler.diff.model import SecretValueCheck
from reconciler.model.fleet import FleetFile
from reconciler.secrets.desired import fingerprints, referenced
from reconciler.secrets.values import SecretValues
from reconciler.secretstore import age
from reconciler.secretstore.local import SecretSource, SecretUnavailable, fleet_key

Check = tuple[SecretValueCheck, str | None]


def compare_encrypted(
    sides: Mapping[str, tuple[bytes | None, bytes | None]],
    fleet: FleetFile,
    root: Path,
    env: Mapping[str, str] | None = None,
) -> dict[str, Check]:
    """Per secret name, (base file, head file) -> changed / same / not checked and why."""
    if not sides:
        return {}
    try:
        identities = age.load_identities(fleet, root, env)
    except age.AgeError as exc:
        return dict.fromkeys(
            sides, (SecretValueCheck.NOT_CHECKED, f"no usable age identity: {exc}")
        )
    if identities is None:
        why = (
            f"no age identity here (env {fleet.secrets.age.identity_env} or fleet.yaml "
            "secrets.age.identity_file)"
        )
        return dict.fromkeys(sides, (SecretValueCheck.NOT_CHECKED, why))
    out: dict[str, Check] = {}
    for name, (was, now) in sides.items():
        if was is None or now is None:
            out[name] = (SecretValueCheck.CHANGED, None)
            continue
        where = Path("secrets", age.age_file(name))
        try:
            same = age.decrypt(was, identities, where) == age.decrypt(now, identities, where)
        except age.AgeError as exc:
            out[name] = (SecretValueCheck.NOT_CHECKED, str(exc))
            continue
        out[name] = (SecretValueCheck.SAME if same else SecretValueCheck.CHANGED, None)
    return out


def revision_fingerprints(
    repo: Repo,
    files: Mapping[str, bytes],
    fleet: FleetFile,
    root: Path,
    env: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """agent -> the fingerprint of the secrets file apply would write at a revision whose
    config is `repo` and whose encrypted files are `files`; None when this machine lacks
    the fleet key or any value (then secrets are "not checked", as in live mode).

    `fleet` is the BASE revision's: it says where the key, identity and values come from.
    A secret held by env or secrets.files has the same value at both revisions; one held
    by the repo's age backend is decrypted from that revision's own file.
    """
    key = fleet_key(fleet, root, env)
    if key is None:
        return None
    refs = referenced(repo)
    names = sorted(set().union(*refs.values())) if refs else []
    source = SecretSource(fleet, root, env)
    identities: age.Identities | None = None
    values: dict[str, str] = {}
    try:
        for name in names:
            if source.backend_of(name) in ("env", "file"):
                values[name] = source.value(name)
                continue
            data = files.get(f"secrets/{age.age_file(name)}")
            if data is None:
                return None
            identities = identities or age.load_identities(fleet, root, env)
            if identities is None:
                return None
            values[name] = age.decrypt(data, identities, Path("secrets", age.age_file(name)))
    except (SecretUnavailable, age.AgeError):
        return None
    return fingerprints(refs, SecretValues(values), key)
