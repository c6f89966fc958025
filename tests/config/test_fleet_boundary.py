"""A pull request must not make reconciler reach beyond the fleet: paths, known_hosts, secrets.

Box paths are normalised, printable and under fleet.yaml's `connection.allowed_paths`;
known_hosts may not live in the repo; plaintext credentials are refused; and no error
message quotes a whole value or a secret-looking one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.errors import ConfigError, ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.config.source import RepoFiles

TINY = Path(__file__).resolve().parents[1] / "cases" / "config" / "tiny"
FLEET = "fleet_id: tiny\nconnection:\n  allowed_paths: [/etc/agent]\n"
SHARD_HEAD = "shard: one\nagents:\n"


NAMES = {
    "fleet": "fleet.yaml",
    "tier_fast": "agents/tier-fast.yaml",
    "shard": "shards/one.yaml",
    "schema": "schemas/agent.schema.json",
}


def _files(**changes: str) -> dict[str, bytes]:
    """The tiny repo's files with some replaced: fleet, tier_fast, shard, schema."""
    files = {p.relative_to(TINY).as_posix(): p.read_bytes() for p in TINY.rglob("*") if p.is_file()}
    for name, text in changes.items():
        files[NAMES[name]] = text.encode()
    return files


def _shard(*entries: str) -> str:
    return SHARD_HEAD + "".join(entries)


def _agent(name: str, tier: str = "fast", host: str = "127.0.0.1", **extra: str) -> str:
    lines = [f"  - name: {name}\n    tier: {tier}\n    host: {host}\n"]
    lines += [f"    {k}: {v}\n" for k, v in extra.items()]
    return "".join(lines)


def _errors(files: dict[str, bytes]) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as info:
        load_repo(files)
    return info.value.errors


def _ok(files: dict[str, bytes]) -> Repo:
    return load_repo(files)


def _rules(errors: list[ConfigError]) -> list[str]:
    return sorted(e.rule for e in errors)


# -- box paths ------------------------------------------------------------------------


def test_the_tiny_repo_declares_its_paths_and_validates() -> None:
    """The base of every case declares connection.allowed_paths and stays valid."""
    assert len(_ok(_files()).agents) == 2


@pytest.mark.parametrize(
    "path",
    [
        '"/etc/agent/../../root/.ssh/authorized_keys"',
        '"/etc/agent/./config.yaml"',
        '"/etc//agent/config.yaml"',
        '"/etc/agent/config.yaml/"',
        '"/etc/agent/conf\\0ig.yaml"',
        '"/etc/agent/conf\\x1big.yaml"',
        '"/etc/agent/\\u202econfig.yaml"',
    ],
)
def test_config_path_must_be_normalised_and_printable(path: str) -> None:
    """`..`, `.`, empty segments, NUL, control and bidi characters are agent.unsafe-path."""
    files = _files(shard=_shard(_agent("one-fast-1", config_path=path)))
    errors = _errors(files)
    assert "agent.unsafe-path" in _rules(errors)
    bad = next(e for e in errors if e.rule == "agent.unsafe-path")
    assert "one-fast-1" in bad.message and "config_path" in bad.message
    assert "\x00" not in str(bad) and "\u202e" not in str(bad) and "\x1b" not in str(bad)


def test_secrets_path_is_checked_too() -> None:
    """secrets_path gets the same checks as config_path."""
    files = _files(shard=_shard(_agent("one-fast-1", secrets_path="/etc/agent/../shadow")))
    assert "agent.unsafe-path" in _rules(_errors(files))


def test_allowed_paths_has_no_default() -> None:
    """Without connection.allowed_paths every box path is refused, naming the setting."""
    errors = _errors(_files(fleet="fleet_id: tiny\n"))
    assert _rules(errors) == ["connection.allowed-paths"]
    assert "connection.allowed_paths" in errors[0].message
    assert "/etc/agent" in errors[0].message  # says what to add


def test_a_path_outside_allowed_paths_is_refused() -> None:
    """A config_path under none of the allowed directories is agent.path-not-allowed."""
    files = _files(
        shard=_shard(
            _agent("one-fast-1", config_path="/root/.ssh/authorized_keys"),
            _agent("one-smart-1", "smart", secrets_path="/etc/agent-evil/s.json"),
        )
    )
    errors = _errors(files)
    assert _rules(errors) == ["agent.path-not-allowed", "agent.path-not-allowed"]
    assert all("connection.allowed_paths" in e.message for e in errors)


def test_allowed_paths_entries_must_be_normalised_absolute_directories() -> None:
    """An allowed path of `/`, `etc/agent` or `/etc/../` is connection.allowed-paths."""
    fleet = "fleet_id: tiny\nconnection:\n  allowed_paths: [/, etc/agent, /etc/../, /etc/agent]\n"
    errors = _errors(_files(fleet=fleet))
    assert _rules(errors) == ["connection.allowed-paths"] * 3


def test_targets_are_compared_normalised() -> None:
    """`/etc/agent/./config.yaml` is the same target as `/etc/agent/config.yaml`."""
    files = _files(
        shard=_shard(
            _agent("one-fast-1"), _agent("one-fast-2", config_path="/etc/agent/./config.yaml")
        )
    )
    assert "agent.duplicate-target" in _rules(_errors(files))


# -- known_hosts ----------------------------------------------------------------------


def test_a_relative_known_hosts_is_in_the_repo_and_refused() -> None:
    """A relative known_hosts resolves against the repo, which a pull request can change."""
    fleet = FLEET + "  known_hosts: known_hosts\n"
    errors = _errors(_files(fleet=fleet))
    assert _rules(errors) == ["connection.known-hosts-in-repo"]
    assert "known_hosts" in errors[0].message
    assert errors[0].where.file == "fleet.yaml"


def test_an_absolute_known_hosts_inside_the_repo_is_refused(tmp_path: Path) -> None:
    """An absolute known_hosts under the repo's root (when the snapshot knows it) is refused."""
    repo = tmp_path / "fleet"
    files = _files(
        shard=_shard(
            _agent("one-fast-1", known_hosts=f"{repo}/keys/../known_hosts"),
            _agent("one-fast-2", host="127.0.0.3"),
        )
    )
    snap = RepoFiles(files, origin="test", root=str(repo))
    with pytest.raises(ConfigErrors) as info:
        load_repo(snap)
    assert _rules(info.value.errors) == ["connection.known-hosts-in-repo"]
    outside = RepoFiles(files | {}, origin="test", root=str(tmp_path / "elsewhere"))
    load_repo(outside)


# -- plaintext secrets ----------------------------------------------------------------

KEYS = {
    "anthropic": "sk-ant-api03-" + "Zk9Qx2" * 6,
    "openai": "sk-proj" + "aB3dE5fG7hJ9kL1mN" * 2,
    "github": "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a",
    "slack": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "aws": "AKIA" + "IOSFODNN7EXAMPL3",
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_a_known_credential_prefix_in_a_payload_is_refused(kind: str) -> None:
    """A pasted key is secret.plaintext at its line, saying to use {secret: NAME}."""
    value = KEYS[kind]
    files = _files(tier_fast=f"config:\n  max_tokens: 256\n  mode: {value}\n")
    errors = _errors(files)
    assert "secret.plaintext" in _rules(errors)
    bad = next(e for e in errors if e.rule == "secret.plaintext")
    assert (bad.where.file, bad.where.line) == ("agents/tier-fast.yaml", 3)
    assert "{secret: NAME}" in bad.message
    assert all(value not in str(e) and value[:12] not in str(e) for e in errors)


def test_a_credential_anywhere_in_config_is_refused() -> None:
    """fleet.yaml, labels, a PEM key in a block scalar: every config value is scanned."""
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\n  b3BlbnNzaC1rZXktdjEAAAAA\n"
    fleet = FLEET + f"description: |\n  {pem}"
    files = _files(
        fleet=fleet,
        shard=_shard(
            _agent("one-fast-1", labels="{owner: " + KEYS["github"] + "}"),
            _agent("one-x", host="127.0.0.3"),
        ),
    )
    errors = _errors(files)
    assert _rules(errors) == ["secret.plaintext", "secret.plaintext"]
    assert not any("b3BlbnNzaC1" in str(e) or KEYS["github"] in str(e) for e in errors)


def test_a_high_entropy_payload_string_is_refused_unless_annotated() -> None:
    """A 40-char random string is secret.entropy; x-not-secret on its field lets it pass."""
    token = "q8Zr2LxW0vN5tKp7YbHc3JdF9sGm1EaU6oIiTy4R"
    tier = f"config:\n  max_tokens: 256\n  mode: {token}\n"
    errors = _errors(_files(tier_fast=tier))
    assert _rules(errors) == ["secret.entropy"]
    assert token not in str(errors[0]) and "x-not-secret" in errors[0].message
    schema = (TINY / "schemas" / "agent.schema.json").read_text()
    schema = schema.replace(
        '"mode": {"type": "string"}', '"mode": {"type": "string", "x-not-secret": true}'
    )
    _ok(_files(tier_fast=tier, schema=schema))


def test_english_and_short_strings_are_not_secrets() -> None:
    """Below 24 characters or 4.0 bits/char nothing is flagged."""
    tier = "config:\n  max_tokens: 256\n  mode: '" + "a" * 35 + "'\n  tags: [a1b2c3]\n"
    _ok(_files(tier_fast=tier))


# -- what messages may quote ----------------------------------------------------------


def test_values_quoted_in_errors_are_cut() -> None:
    """A 10,000-character value is quoted as at most ~60 characters."""
    long = "x" * 10_000
    tier = f"config:\n  max_tokens: 256\n  model: {long}\n"
    errors = _errors(_files(tier_fast=tier))
    assert _rules(errors) == ["payload.schema"]
    assert "x" * 61 not in str(errors[0]) and "x" * 30 in str(errors[0])
    wave = "fleet_id: tiny\nconnection:\n  allowed_paths: [/etc/agent]\nrollout:\n"
    wave += f"  waves: [1, '{'9' * 5000}']\n"
    errors = _errors(_files(fleet=wave))
    assert errors and all("9" * 61 not in str(e) for e in errors)


def test_secret_looking_fields_are_redacted_in_errors() -> None:
    """A wrong value in a field named like a credential prints as <redacted>."""
    tier = "config:\n  max_tokens: 256\n  api_key: hunter2-is-my-password\n"
    errors = _errors(_files(tier_fast=tier))
    assert errors and all("hunter2" not in str(e) for e in errors)
    assert any("<redacted>" in str(e) for e in errors)
