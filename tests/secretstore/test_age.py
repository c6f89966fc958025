"""The age backend: secrets/NAME.age in the repo, recipients, identities, lookup order, errors.

Real encryption (pyrage) on files in a temporary repo directory; no mocks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.model.fleet import FleetFile
from reconciler.secrets.names import MissingSecretError
from reconciler.secrets.redact import REDACTOR
from reconciler.secrets.values import value_fingerprint
from reconciler.secretstore import (
    SecretSource,
    backend_of,
    fleet_key,
    resolve_values,
)
from reconciler.secretstore.age import (
    AgeError,
    age_file,
    encrypt,
    generate_identity,
    read_recipients,
)
from reconciler.secretstore.repofile import write_secrets_file

VALUE = "sk-test-9f8e7d6c5b4a39281706"


def _fleet(**secrets: object) -> FleetFile:
    return FleetFile.model_validate({"fleet_id": "f", "secrets": secrets})


class Keys:
    """Two identities (a team, CI) written as files, and the repo listing both."""

    def __init__(self, tmp: Path) -> None:
        self.repo = tmp / "repo"
        (self.repo / "secrets").mkdir(parents=True)
        self.ids: dict[str, tuple[Path, str]] = {}
        lines = ["# who may decrypt", ""]
        for who in ("team", "ci"):
            secret, public = generate_identity()
            path = tmp / f"{who}.key"
            path.write_text(f"# created for {who}\n{secret}\n", encoding="utf-8")
            self.ids[who] = (path, secret)
            lines.append(f"{public}  # {who}")
        (self.repo / "secrets" / "recipients.txt").write_text("\n".join(lines) + "\n")

    def set(self, name: str, value: str) -> Path:
        return write_secrets_file(
            self.repo, age_file(name), encrypt(value, read_recipients(self.repo))
        )


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def test_each_of_two_recipients_decrypts_the_value(keys: Keys) -> None:
    """Encrypted to team and CI: the team's identity file and CI's env var each get it back."""
    path = keys.set("api_key", VALUE)
    assert VALUE.encode() not in path.read_bytes()
    assert path.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    team_file, _ = keys.ids["team"]
    team = _fleet(age={"identity_file": str(team_file)})
    assert resolve_values(["api_key"], team, keys.repo, env={}).reveal("api_key") == VALUE
    _, ci_secret = keys.ids["ci"]
    ci = _fleet()  # identity from the env var only
    env = {"RECONCILER_AGE_IDENTITY": ci_secret}
    assert resolve_values(["api_key"], ci, keys.repo, env=env).reveal("api_key") == VALUE
    assert REDACTOR.scrub(f"x {VALUE} y") == "x <redacted> y"  # registered as resolved
    assert REDACTOR.scrub(ci_secret) == "<redacted>"  # so is the identity


def test_a_wrong_identity_is_a_clear_error_naming_the_file_and_the_setting(
    keys: Keys, tmp_path: Path
) -> None:
    """An identity that is not a recipient: the .age file and the setting named, no value."""
    keys.set("api_key", VALUE)
    other, _ = generate_identity()
    stranger = tmp_path / "stranger.key"
    stranger.write_text(other + "\n")
    fleet = _fleet(age={"identity_file": str(stranger)})
    with pytest.raises(MissingSecretError) as caught:
        resolve_values(["api_key"], fleet, keys.repo, env={})
    text = str(caught.value)
    assert str(keys.repo / "secrets" / "api_key.age") in text
    assert f"secrets.age.identity_file ({stranger})" in text
    assert "not one of its recipients" in text
    assert VALUE not in text and other not in text


def test_no_identity_configured_says_which_settings_to_set(keys: Keys) -> None:
    keys.set("api_key", VALUE)
    with pytest.raises(MissingSecretError) as caught:
        resolve_values(["api_key"], _fleet(), keys.repo, env={})
    text = str(caught.value)
    assert "api_key.age is age-encrypted and no age identity is configured" in text
    assert "RECONCILER_AGE_IDENTITY" in text and "secrets.age.identity_file" in text


def test_a_corrupt_file_is_named(keys: Keys) -> None:
    path = keys.set("api_key", VALUE)
    data = bytearray(path.read_bytes())
    data[70] = ord("A") if data[70] != ord("A") else ord("B")  # inside the header
    path.write_bytes(bytes(data))
    team_file, _ = keys.ids["team"]
    with pytest.raises(MissingSecretError, match=r"api_key\.age is not a readable age file"):
        resolve_values(["api_key"], _fleet(age={"identity_file": str(team_file)}), keys.repo)


def test_a_broken_identity_file_names_the_line_never_the_text(keys: Keys, tmp_path: Path) -> None:
    keys.set("api_key", VALUE)
    bad = tmp_path / "bad.key"
    bad.write_text("# comment\nAGE-SECRET-KEY-1NOTAKEY\n")
    fleet = _fleet(age={"identity_file": str(bad)})
    with pytest.raises(MissingSecretError) as caught:
        resolve_values(["api_key"], fleet, keys.repo, env={})
    assert f"identity_file ({bad}), line 2: not a valid age identity" in str(caught.value)
    assert "NOTAKEY" not in str(caught.value)
    missing = _fleet(age={"identity_file": str(tmp_path / "nope.key")})
    with pytest.raises(MissingSecretError, match=r"nope\.key\) cannot be read"):
        resolve_values(["api_key"], missing, keys.repo, env={})


def test_a_symlinked_age_file_is_refused_not_followed(keys: Keys, tmp_path: Path) -> None:
    """secrets/NAME.age as a link to a valid encrypted file elsewhere: refused, named."""
    elsewhere = keys.set("other", VALUE)
    outside = tmp_path / "outside.age"
    outside.write_bytes(elsewhere.read_bytes())
    os.symlink(outside, keys.repo / "secrets" / "api_key.age")
    team_file, _ = keys.ids["team"]
    fleet = _fleet(age={"identity_file": str(team_file)})
    assert backend_of("api_key", fleet, keys.repo, {}) == "age"
    with pytest.raises(MissingSecretError) as caught:
        resolve_values(["api_key"], fleet, keys.repo, env={})
    text = str(caught.value)
    assert "repo.symlink" in text and "api_key.age is a symbolic link" in text


def test_a_symlinked_secrets_directory_is_refused(keys: Keys, tmp_path: Path) -> None:
    keys.set("api_key", VALUE)
    moved = tmp_path / "real-secrets"
    (keys.repo / "secrets").rename(moved)
    os.symlink(moved, keys.repo / "secrets")
    team_file, _ = keys.ids["team"]
    with pytest.raises(MissingSecretError, match=r"secrets is a symbolic link"):
        resolve_values(["api_key"], _fleet(age={"identity_file": str(team_file)}), keys.repo)
    with pytest.raises(Exception, match=r"secrets is a symbolic link"):
        keys.set("api_key", "another-value-123")


def test_lookup_order_env_then_files_then_age(keys: Keys, tmp_path: Path) -> None:
    """All three hold a value: env wins; without env the file; without either the .age."""
    keys.set("api_key", VALUE)
    team_file, _ = keys.ids["team"]
    value_file = tmp_path / "api_key.txt"
    value_file.write_text("from-the-file-1234\n")
    both = _fleet(age={"identity_file": str(team_file)}, files={"api_key": str(value_file)})
    age_only = _fleet(age={"identity_file": str(team_file)})
    env = {"RECONCILER_SECRET_API_KEY": "from-the-env-1234"}

    def got(fleet: FleetFile, env: dict[str, str]) -> tuple[str, str]:
        source = SecretSource(fleet, keys.repo, env)
        return source.backend_of("api_key"), source.value("api_key")

    assert got(both, env) == ("env", "from-the-env-1234")
    assert got(both, {}) == ("file", "from-the-file-1234")
    assert got(age_only, {}) == ("age", VALUE)
    assert backend_of("nothing", age_only, keys.repo, {}) == "missing"


def test_recipients_file_refuses_an_identity_pasted_by_mistake(keys: Keys) -> None:
    """A secret key in recipients.txt: refused, told to remove and replace it, never shown."""
    secret, _ = generate_identity()
    path = keys.repo / "secrets" / "recipients.txt"
    path.write_text(path.read_text() + secret + "\n")
    with pytest.raises(AgeError) as caught:
        read_recipients(keys.repo)
    assert "line 5 is an age identity (a secret key)" in str(caught.value)
    assert secret not in str(caught.value)
    path.write_text("# nobody\n")
    with pytest.raises(AgeError, match="lists no recipients"):
        read_recipients(keys.repo)


def test_the_fleet_key_is_found_beside_the_age_identity(keys: Keys) -> None:
    """No fleet_key_file: fleet.key beside secrets.age.identity_file; env still first."""
    team_file, _ = keys.ids["team"]
    fleet = _fleet(age={"identity_file": str(team_file)})
    assert fleet_key(fleet, keys.repo, {}) is None  # no fleet.key there yet: not checked
    team_file.with_name("fleet.key").write_text("k-beside-the-identity\n")
    assert fleet_key(fleet, keys.repo, {}) == b"k-beside-the-identity"
    assert fleet_key(fleet, keys.repo, {"RECONCILER_FLEET_KEY": "k-env"}) == b"k-env"


def test_value_fingerprint_is_keyed_and_per_value() -> None:
    a = value_fingerprint(VALUE, b"key-one")
    assert a.startswith("hmac:") and len(a) == len("hmac:") + 16
    assert a != value_fingerprint(VALUE, b"key-two")
    assert a != value_fingerprint(VALUE + "x", b"key-one")
    assert VALUE not in a


def test_a_failing_backend_is_told_apart_from_a_missing_value(keys: Keys, tmp_path: Path) -> None:
    """A wrong identity fails the backend (`failed`): diff and apply must say so rather than
    report "no change"; no identity configured at all (a CI job without one) is merely
    missing: secrets are then "not checked"."""
    keys.set("api_key", VALUE)
    other, _ = generate_identity()
    stranger = tmp_path / "stranger.key"
    stranger.write_text(other + "\n")
    with pytest.raises(MissingSecretError) as wrong:
        resolve_values(["api_key"], _fleet(age={"identity_file": str(stranger)}), keys.repo, {})
    assert wrong.value.failed
    with pytest.raises(MissingSecretError) as unset:
        resolve_values(["api_key"], _fleet(), keys.repo, env={})
    assert not unset.value.failed
