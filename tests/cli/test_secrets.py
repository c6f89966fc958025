"""`reconcile secrets set/list` through the real entry points (CliRunner and the script).

A copy of fleet-config-example switched to the age backend: two recipients (a team and
CI), the team's identity in a file outside the repo, the fleet key beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app
from reconciler.secretstore.age import generate_identity
from reconciler.testing.console import reconcile_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"
FIRST = "sk-first-value-a1b2c3d4e5f6a7b8"
SECOND = "sk-second-value-0f1e2d3c4b5a6978"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RECONCILER_"):
            monkeypatch.delenv(name)


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = tmp / "repo"
        shutil.copytree(EXAMPLE, self.repo)
        self.keys = tmp / "keys"
        self.keys.mkdir()
        publics = []
        self.secret_keys = {}
        for who in ("team", "ci"):
            secret, public = generate_identity()
            (self.keys / f"{who}.key").write_text(secret + "\n")
            self.secret_keys[who] = secret
            publics.append(f"{public}  # {who}")
        (self.repo / "secrets" / "recipients.txt").write_text("\n".join(publics) + "\n")
        fleet = self.repo / "fleet.yaml"
        text = fleet.read_text()
        start = text.index("secrets:\n")
        end = text.index("\n\n", start) if "\n\n" in text[start:] else len(text)
        text = (
            text[:start]
            + f"secrets:\n  age:\n    identity_file: {self.keys / 'team.key'}\n"
            + text[end:]
        )
        fleet.write_text(text)

    def value_file(self, value: str) -> Path:
        path = self.tmp / "value.txt"
        path.write_text(value + "\n")
        return path

    def with_key(self) -> None:
        (self.keys / "fleet.key").write_text("a-fleet-key-for-tests\n")


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path)


def _listed(fleet: Fleet) -> dict[str, dict[str, object]]:
    code, out, err = run("secrets", "list", "--repo", str(fleet.repo), "--format", "json")
    assert code == 0, err
    return {row["name"]: row for row in json.loads(out)["secrets"]}


def test_set_then_list_shows_age_and_a_fingerprint_that_follows_the_value(fleet: Fleet) -> None:
    """set (file), list: age + hmac; set (stdin) a new value: another hmac; no value shown."""
    fleet.with_key()
    outputs = []
    code, out, err = run(
        "secrets", "set", "anthropic_api_key", "--value-file",
        str(fleet.value_file(FIRST)), "--repo", str(fleet.repo),
    )  # fmt: skip
    outputs += [out, err]
    assert code == 0, err
    age = fleet.repo / "secrets" / "anthropic_api_key.age"
    assert age.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert f"wrote {age}" in err and "not committed" in err
    assert "git -C" in err and "add secrets/anthropic_api_key.age" in err
    first = _listed(fleet)["anthropic_api_key"]
    assert first["backend"] == "age" and first["state"] == "ok"
    assert str(first["fingerprint"]).startswith("hmac:")
    assert _listed(fleet)["kb_token"]["backend"] == "missing"

    code, out, err = run(
        "secrets", "set", "anthropic_api_key", "--stdin", "--repo", str(fleet.repo),
        stdin=SECOND + "\n",
    )  # fmt: skip
    outputs += [out, err]
    assert code == 0, err
    second = _listed(fleet)["anthropic_api_key"]
    assert second["backend"] == "age" and second["fingerprint"] != first["fingerprint"]

    code, out, err = run("secrets", "list", "--repo", str(fleet.repo))
    outputs += [out, err]
    assert code == 0
    assert any(
        line.split() == ["anthropic_api_key", "age", second["fingerprint"]]
        for line in out.splitlines()
    ), out
    for text in outputs:
        assert FIRST not in text and SECOND not in text
    assert SECOND.encode() not in age.read_bytes()


def test_without_the_fleet_key_fingerprints_are_not_checked(fleet: Fleet) -> None:
    code, _, err = run(
        "secrets", "set", "kb_token", "--value-file", str(fleet.value_file(FIRST)),
        "--repo", str(fleet.repo),
    )  # fmt: skip
    assert code == 0, err
    row = _listed(fleet)["kb_token"]
    assert (row["backend"], row["state"], row["fingerprint"]) == ("age", "not checked", None)


def test_a_wrong_identity_fails_list_naming_the_file_and_setting(fleet: Fleet) -> None:
    """Encrypted to team and CI; listed with a stranger's identity: exit 1, the file named."""
    code, _, err = run(
        "secrets", "set", "kb_token", "--value-file", str(fleet.value_file(FIRST)),
        "--repo", str(fleet.repo),
    )  # fmt: skip
    assert code == 0, err
    stranger, _ = generate_identity()
    (fleet.keys / "team.key").write_text(stranger + "\n")
    code, out, err = run("secrets", "list", "--repo", str(fleet.repo))
    assert code == 1
    assert "kb_token" in out and "error" in out
    assert "kb_token.age cannot be decrypted" in err and "secrets.age.identity_file" in err
    assert "Traceback" not in out + err and stranger not in out + err


def test_the_ci_identity_in_the_environment_decrypts_too(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.with_key()
    run("secrets", "set", "kb_token", "--value-file", str(fleet.value_file(FIRST)),
        "--repo", str(fleet.repo))  # fmt: skip
    team = _listed(fleet)["kb_token"]["fingerprint"]
    (fleet.keys / "team.key").unlink()
    monkeypatch.setenv("RECONCILER_AGE_IDENTITY", fleet.secret_keys["ci"])
    assert _listed(fleet)["kb_token"]["fingerprint"] == team


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["kb_token", "--stdin"], "\n", "the value is empty"),
        (["kb_token", "--stdin"], "   \n", "the value is empty"),
        (["kb_token"], None, "exactly one of --value-file FILE and --stdin"),
        (["not_declared", "--stdin"], "some-value-123", "not declared in"),
    ],
)
def test_set_refusals_write_nothing(
    fleet: Fleet, args: list[str], stdin: str | None, says: str
) -> None:
    code, _, err = run("secrets", "set", *args, "--repo", str(fleet.repo), stdin=stdin)
    assert code == 1 and says in err and "Traceback" not in err
    assert not list((fleet.repo / "secrets").glob("*.age"))


def test_set_without_recipients_says_where_to_list_them(fleet: Fleet) -> None:
    (fleet.repo / "secrets" / "recipients.txt").unlink()
    code, _, err = run("secrets", "set", "kb_token", "--stdin", "--repo", str(fleet.repo),
                       stdin="v-123456789")  # fmt: skip
    assert code == 1 and "recipients.txt does not exist" in err
    assert not (fleet.repo / "secrets" / "kb_token.age").exists()


def test_a_symlinked_secrets_directory_is_refused_with_exit_1(fleet: Fleet, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (fleet.repo / "secrets").rename(outside)
    os.symlink(outside, fleet.repo / "secrets")
    code, _, err = run("secrets", "list", "--repo", str(fleet.repo))
    assert code == 1 and "symbolic link" in err and "Traceback" not in err


def test_help_shows_an_example() -> None:
    for cmd in (["secrets"], ["secrets", "set"], ["secrets", "list"]):
        code, out, _ = run(*cmd, "--help")
        assert code == 0 and "Example:" in out, cmd


def test_the_installed_script_sets_and_lists(fleet: Fleet) -> None:
    """As an operator runs it: the console script in a subprocess, the value on stdin."""
    fleet.with_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    done = subprocess.run(
        [reconcile_script(), "secrets", "set", "kb_token", "--stdin", "--repo", str(fleet.repo)],
        input=FIRST, capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [reconcile_script(), "secrets", "list", "--repo", str(fleet.repo)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "kb_token" in listed.stdout and "age" in listed.stdout and "hmac:" in listed.stdout
    for text in (done.stdout, done.stderr, listed.stdout, listed.stderr):
        assert FIRST not in text
