"""A pull request that changes only encrypted secret files is not "No changes".

`reconcile diff --base --head` on a real git repo (fleet-config-example on the age
backend, tests/cli/test_secrets.py's fixture): a new secrets/NAME.age is a new value for
every agent that refers to it, a re-encrypted same value changes nothing, a machine
without the identity says it could not compare, and a recipients change is [access]. The
values never appear in any format.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reconciler.diff.model import ChangeKind
from reconciler.diff.secretfiles import changed_secrets, recipients_change

from .test_secrets import FIRST, SECOND, Fleet, run

NAMES = ("anthropic_api_key", "kb_token")  # what the example's agents refer to


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip


def _set(fleet: Fleet, name: str, value: str) -> None:
    code, _, err = run("secrets", "set", name, "--value-file", str(fleet.value_file(value)),
                       "--repo", str(fleet.repo))  # fmt: skip
    assert code == 0, err


def _commit(fleet: Fleet, message: str) -> None:
    _git(fleet.repo, "add", "-A")
    _git(fleet.repo, "commit", "-qm", message)


def _diff(fleet: Fleet, fmt: str = "json") -> tuple[int, str, str]:
    return run("diff", "--base", "HEAD~1", "--head", "HEAD", "--repo", str(fleet.repo),
               "--format", fmt, "--exit-code")  # fmt: skip


NEW_RECIPIENT = "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq7s6wq5"


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RECONCILER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def base(tmp_path: Path) -> Fleet:
    """The base commit: every referenced secret set to FIRST, the fleet key beside the identity."""
    fleet = Fleet(tmp_path)
    fleet.with_key()
    _git(fleet.repo, "init", "-q")
    for name in NAMES:
        _set(fleet, name, FIRST)
    _commit(fleet, "base")
    return fleet


def _no_values(*outputs: str) -> None:
    for out in outputs:
        assert FIRST not in out and SECOND not in out


def test_a_new_secret_value_is_a_rollout_of_the_agents_that_use_it(base: Fleet) -> None:
    _set(base, "anthropic_api_key", SECOND)
    _commit(base, "new api key")
    code, out, err = _diff(base)
    assert code == 2, err
    doc = json.loads(out)["diff"]
    (change,) = doc["secret_files"]
    assert change["name"] == "anthropic_api_key"
    assert change["path"] == "secrets/anthropic_api_key.age"
    assert change["value"] == "changed"
    users = change["agents"]
    assert users > 0
    with_new = [a for a in doc["agents"] if a.get("secrets") and a["secrets"]["check"] == "changed"]
    assert len(with_new) == users  # each agent that refers to it rolls out its secrets file
    text_code, text, text_err = _diff(base, "text")
    assert text_code == 2
    assert "No changes" not in text
    assert "changed secrets/anthropic_api_key.age: new value" in text
    md_code, md, _ = _diff(base, "markdown")
    assert md_code == 2 and "secrets/anthropic_api_key.age" in md and "No changes" not in md
    _no_values(out, err, text, text_err, md)


def test_the_same_value_re_encrypted_changes_nothing(base: Fleet) -> None:
    _set(base, "anthropic_api_key", FIRST)  # age encrypts afresh: another file, same value
    _commit(base, "re-encrypt")
    code, out, err = _diff(base)
    assert code == 0, out + err
    doc = json.loads(out)["diff"]
    assert [(c["name"], c["value"]) for c in doc["secret_files"]] == [("anthropic_api_key", "same")]
    assert not any(a.get("secrets") for a in doc["agents"])
    _no_values(out, err)


def test_without_the_identity_the_change_is_shown_not_compared(base: Fleet) -> None:
    _set(base, "anthropic_api_key", SECOND)
    _commit(base, "new api key")
    (base.keys / "team.key").rename(base.keys / "away.key")  # a CI job that holds no identity
    code, out, err = _diff(base)
    assert code == 2, err
    (change,) = json.loads(out)["diff"]["secret_files"]
    assert change["value"] == "not checked"
    assert "team.key" in change["note"]
    _, text, _ = _diff(base, "text")
    assert "value not compared" in text and "No changes" not in text
    _no_values(out, err, text)


def test_a_recipients_change_is_access(base: Fleet) -> None:
    recipients = base.repo / "secrets" / "recipients.txt"
    recipients.write_text(
        recipients.read_text()
        + "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq7s6wq5  # new\n"
    )
    _commit(base, "another recipient")
    code, out, err = _diff(base)
    assert code == 2, err
    access = json.loads(out)["diff"]["fleet_access"]
    assert [(c["path"], c["kind"], c["new"]) for c in access] == [
        (
            ["secrets", "recipients"],
            "added",
            "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq7s6wq5",
        )
    ]
    assert all(c["access"] for c in access)


def test_core_names_files_and_redacts_an_identity_in_recipients() -> None:
    base = {"secrets/a.age": b"x", "secrets/b.age": b"y", "secrets/index.yaml": b"1",
            "secrets/recipients.txt": b"age1one # team\n"}  # fmt: skip
    head = {"secrets/a.age": b"x2", "secrets/c.age": b"z", "secrets/index.yaml": b"2",
            "secrets/recipients.txt": b"age1one\nAGE-SECRET-KEY-1SECRETSECRET\n"}  # fmt: skip
    assert changed_secrets(base, head) == {
        "a": ChangeKind.CHANGED, "b": ChangeKind.REMOVED, "c": ChangeKind.ADDED,
    }  # fmt: skip
    (added,) = recipients_change(base, head)
    assert added.kind is ChangeKind.ADDED and added.access
    assert "SECRETSECRET" not in json.dumps(added.model_dump(mode="json"))
