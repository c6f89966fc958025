"""Secrets: write a value into the repo, age-encrypted (`set`); list names, backends and
keyed fingerprints (`list`). Values never leave through any output.

`set` encrypts to every recipient in secrets/recipients.txt and writes secrets/NAME.age
atomically; it does not commit (the caller prints the git commands). `list` looks each
declared name up in the order apply does (env, secrets.files, secrets/NAME.age) and
shows the HMAC of its value under the fleet key, or "not checked" without the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TextIO

from reconciler.app.config import load_config
from reconciler.config.repo import Repo
from reconciler.errors import Refused
from reconciler.secrets.names import env_name
from reconciler.secrets.redact import REDACTOR
from reconciler.secrets.values import value_fingerprint
from reconciler.secretstore import Backend, SecretSource, SecretUnavailable, fleet_key
from reconciler.secretstore.age import RECIPIENTS_FILE, age_file, encrypt, read_recipients
from reconciler.secretstore.repofile import write_secrets_file

State = Literal["ok", "not checked", "missing", "error"]
MAX_VALUE_BYTES: Final = 64 * 1024


def read_value(value_file: Path | None, stdin: TextIO | None) -> str:
    """The new value from exactly one of a file and stdin, trailing newlines dropped.

    Raises:
        Refused: neither or both given, the file unreadable, not UTF-8, too large, or blank.
    """
    if (value_file is None) == (stdin is None):
        raise Refused("give the value with exactly one of --value-file FILE and --stdin")
    source = f"--value-file {value_file}" if value_file is not None else "--stdin"
    try:
        if value_file is not None:
            data = value_file.read_bytes()[: MAX_VALUE_BYTES + 1]
            text = data.decode("utf-8")
        else:
            assert stdin is not None  # noqa: S101 (checked above)
            text = stdin.read(MAX_VALUE_BYTES + 1)
    except OSError as exc:
        raise Refused(f"{source}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise Refused(f"{source}: the value is not UTF-8 text; nothing was written") from None
    value = text.rstrip("\r\n")
    REDACTOR.add([value])  # from here on no output may show it
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise Refused(f"{source}: the value is over {MAX_VALUE_BYTES} bytes; nothing was written")
    if not value.strip():
        raise Refused(f"{source}: the value is empty; nothing was written")
    return value


@dataclass(frozen=True, slots=True)
class SetResult:
    """What `secrets set` wrote, and what to do next."""

    name: str
    path: Path
    rel: str
    recipients: int
    fingerprint: str | None
    shadowed_by: Backend | None  # env or file: that backend still wins the lookup here


def _declared(repo: Repo, name: str, root: Path) -> None:
    if name not in repo.secrets:
        declared = ", ".join(sorted(repo.secrets)) or "none"
        raise Refused(
            f"secret {name!r} is not declared in {root / 'secrets/index.yaml'} "
            f"(declared: {declared}); declare it there first"
        )


def set_secret(
    root: Path, name: str, value: str, env: Mapping[str, str] | None = None
) -> SetResult:
    """Encrypt `value` to the repo's recipients into secrets/NAME.age (not committed).

    Raises:
        Refused: the repo does not load, or `name` is not declared.
        AgeError: secrets/recipients.txt missing or holding no valid public key.
        ConfigError: secrets/ or a file in it is a symlink.
    """
    REDACTOR.add([value])
    repo = load_config(root)
    _declared(repo, name, root)
    recipients = read_recipients(root)
    path = write_secrets_file(root, age_file(name), encrypt(value, recipients))
    key = fleet_key(repo.fleet, root, env)
    backend = SecretSource(repo.fleet, root, env).backend_of(name)
    return SetResult(
        name=name,
        path=path,
        rel=f"secrets/{age_file(name)}",
        recipients=len(recipients),
        fingerprint=value_fingerprint(value, key) if key is not None else None,
        shadowed_by=backend if backend in ("env", "file") else None,
    )


def set_summary(done: SetResult, root: Path) -> list[str]:
    """The lines `secrets set` prints: what it wrote, and that it is not committed."""
    fp = done.fingerprint or "not checked (no fleet key)"
    lines = [
        f"wrote {done.path}: {done.name}, age-encrypted to {done.recipients} recipient(s) "
        f"of secrets/{RECIPIENTS_FILE}; fingerprint {fp}",
        "not committed; to commit it:",
        f"  git -C {root} add {done.rel}",
        f"  git -C {root} commit -m 'secret {done.name}: new value'",
    ]
    if done.shadowed_by == "env":
        lines.append(f"note: {env_name(done.name)} is set here and wins over {done.rel}")
    elif done.shadowed_by == "file":
        lines.append(f"note: fleet.yaml secrets.files names a file for {done.name}; it wins")
    return lines


@dataclass(frozen=True, slots=True)
class SecretRow:
    """One declared secret: where its value is and its keyed fingerprint."""

    name: str
    backend: Backend
    state: State
    fingerprint: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    rows: list[SecretRow]
    keyed: bool  # the fleet key was found

    @property
    def errors(self) -> list[SecretRow]:
        return [r for r in self.rows if r.state == "error"]


def list_secrets(root: Path, env: Mapping[str, str] | None = None) -> ListResult:
    """Every declared secret, its backend and the fingerprint of its value.

    Raises:
        Refused: the repo does not load.
    """
    repo = load_config(root)
    key = fleet_key(repo.fleet, root, env)
    source = SecretSource(repo.fleet, root, env)
    rows = []
    for name in sorted(repo.secrets):
        backend = source.backend_of(name)
        try:
            value = source.value(name)
        except SecretUnavailable as exc:
            state: State = "missing" if exc.missing else "error"
            rows.append(SecretRow(name, backend, state, detail=str(exc)))
            continue
        if key is None:
            rows.append(SecretRow(name, backend, "not checked"))
        else:
            rows.append(SecretRow(name, backend, "ok", value_fingerprint(value, key)))
    return ListResult(rows, key is not None)


def list_json(done: ListResult) -> str:
    """`secrets list --format json`."""
    doc = {
        "fleet_key": done.keyed,
        "secrets": [
            {
                "name": r.name,
                "backend": r.backend,
                "state": r.state,
                "fingerprint": r.fingerprint,
                "detail": r.detail,
            }
            for r in done.rows
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def list_text(done: ListResult) -> str:
    """`secrets list`: a table of name, backend and fingerprint (or why there is none)."""
    rows = [("NAME", "BACKEND", "FINGERPRINT")]
    rows += [(r.name, r.backend, r.fingerprint or r.state) for r in done.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines) + "\n"
