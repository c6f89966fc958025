"""Hostile config repos, and the property every one of them must keep (tests and bench).

A hostile repo is the tiny valid repo (tests/cases/config/tiny) with things a pull
request could do to it: config files or directories swapped for symlinks to a
"secret" beyond the repo, FIFOs, random bytes, huge values, odd box paths (dots,
NUL, control and bidi characters), credentials and random tokens pasted anywhere.

`check(repo)` writes one to a temp dir, reads it through the repo edge and loads it
through the validator, and asserts: nothing but `ConfigErrors` is raised; no file
beyond the repo is opened; no message holds a planted secret (nor 12 characters of
one) or the outside file's content; no message is longer than the backstop.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from reconciler.config.errors import MAX_MESSAGE_CHARS, ConfigErrors
from reconciler.config.repo import load_repo
from reconciler.repo import read_work_tree

TINY = Path(__file__).resolve().parent / "cases" / "config" / "tiny"
OUTSIDE_MARKER = "OUTSIDE-THE-REPO-7c1e"
CONFIG_FILES = (
    "fleet.yaml",
    "agents/_base.yaml",
    "agents/tier-fast.yaml",
    "agents/tier-smart.yaml",
    "shards/one.yaml",
    "secrets/index.yaml",
    "schemas/agent.schema.json",
)
CONFIG_DIRS = ("agents", "shards", "secrets", "schemas", "alerts")


@dataclass(frozen=True)
class Link:
    """A config file or directory replaced by a symlink to the outside secret (or its dir)."""

    rel: str


@dataclass(frozen=True)
class Fifo:
    """A config file replaced by a named pipe."""

    rel: str


@dataclass
class HostileRepo:
    """The tiny repo's files after the hostile changes, and the secrets planted in it."""

    files: dict[str, bytes | Link | Fifo] = field(default_factory=dict)
    planted: list[str] = field(default_factory=list)


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_PREFIXES = ("sk-ant-api03-", "sk-proj-", "ghp_", "xoxb-", "AKIA")


@st.composite
def secrets(draw: st.DrawFn) -> str:
    """A credential: a known prefix and a random body, or a bare random token."""
    body = draw(st.text(alphabet=_ALNUM, min_size=24, max_size=48))
    kind = draw(st.sampled_from((*_PREFIXES, "", "pem")))
    if kind == "AKIA":
        return "AKIA" + draw(st.text(alphabet=_ALNUM[26:], min_size=16, max_size=16))
    if kind == "pem":
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    if kind == "":
        # Random enough to pass the entropy threshold: distinct characters, shuffled.
        chars = draw(st.permutations(_ALNUM))
        return "".join(chars[: draw(st.integers(28, 48))])
    return kind + body


odd_paths = st.one_of(
    st.text(max_size=40).map(lambda s: "/etc/agent/" + s),
    st.sampled_from(
        [
            "/etc/agent/../../root/.ssh/authorized_keys",
            "/etc/agent/./config.yaml",
            "//etc/agent/config.yaml",
            "/etc/agent/config.yaml/",
            "/etc/agent/\u202egnp.yaml",
            "/etc/agent/\x00x",
            "etc/agent/config.yaml",
            "/",
            "",
        ]
    ),
)
huge_values = st.integers(1_000, 50_000).map(lambda n: "v" * n)
scalars: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=30), st.integers(), st.booleans(), st.none(), huge_values, secrets()
)


def _yaml(value: Any) -> str:
    """A value as a YAML flow scalar (JSON is valid YAML)."""
    return json.dumps(value)


@st.composite
def hostile_repos(draw: st.DrawFn) -> HostileRepo:
    """The tiny repo with 1-4 hostile changes."""
    repo = HostileRepo()
    for rel in CONFIG_FILES:
        repo.files[rel] = (TINY / rel).read_bytes()
    changes = draw(st.lists(st.integers(0, 8), min_size=1, max_size=4))
    for change in changes:
        if change == 0:  # a config file becomes a symlink to the outside secret
            repo.files[draw(st.sampled_from(CONFIG_FILES))] = Link("file")
        elif change == 1:  # a config directory becomes a symlink to the outside dir
            repo.files[draw(st.sampled_from(CONFIG_DIRS))] = Link("dir")
        elif change == 2:
            repo.files[draw(st.sampled_from(CONFIG_FILES))] = Fifo("fifo")
        elif change == 3:  # random bytes
            repo.files[draw(st.sampled_from(CONFIG_FILES))] = draw(st.binary(max_size=300))
        elif change in (4, 5):  # a credential or a huge value somewhere in config
            value = draw(secrets()) if change == 4 else draw(scalars)
            if isinstance(value, str) and change == 4:
                repo.planted.append(value)
            where = draw(st.sampled_from(["tier", "label", "fleet", "key", "index"]))
            if where == "tier":
                text = f"config:\n  max_tokens: 256\n  mode: {_yaml(value)}\n"
                repo.files["agents/tier-fast.yaml"] = text.encode()
            elif where == "label":
                text = "shard: one\nagents:\n  - name: one-fast-1\n    tier: fast\n"
                text += f"    host: 127.0.0.1\n    labels: {{x: {_yaml(value)}}}\n"
                repo.files["shards/one.yaml"] = text.encode()
            elif where == "fleet":
                text = f"fleet_id: tiny\ndescription: {_yaml(value)}\n"
                text += "connection:\n  allowed_paths: [/etc/agent]\n"
                repo.files["fleet.yaml"] = text.encode()
            elif where == "key":
                text = f"config:\n  {_yaml(value)}: 1\n"
                repo.files["agents/tier-smart.yaml"] = text.encode()
            else:
                text = f"secrets:\n  - name: {_yaml(value)}\n"
                repo.files["secrets/index.yaml"] = text.encode()
        elif change == 6:  # an odd box path
            field_name = draw(st.sampled_from(["config_path", "secrets_path", "known_hosts"]))
            text = f"{field_name}: {_yaml(draw(odd_paths))}\nconfig:\n  model: large\n"
            repo.files["agents/tier-smart.yaml"] = text.encode()
        elif change == 7:  # odd allowed paths
            paths = draw(st.lists(odd_paths, max_size=3))
            text = f"fleet_id: tiny\nconnection:\n  allowed_paths: {_yaml(paths)}\n"
            repo.files["fleet.yaml"] = text.encode()
        else:  # a payload string that is secret-looking in a field named like a credential
            value = draw(secrets())
            repo.planted.append(value)
            text = f"config:\n  max_tokens: 256\n  api_key: {_yaml(value)}\n"
            repo.files["agents/tier-fast.yaml"] = text.encode()
    return repo


@contextmanager
def _opened_paths() -> Iterator[list[str]]:
    """Every path os.open is asked for while inside (relative ones as given)."""
    seen: list[str] = []
    real = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        seen.append(os.fsdecode(path))
        return real(path, flags, mode, dir_fd=dir_fd)

    os.open = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        os.open = real


def _materialize(repo: HostileRepo, root: Path, outside: Path) -> None:
    for rel, spec in repo.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if isinstance(spec, Link):
            path.symlink_to(outside if spec.rel == "dir" else outside / "tier-fast.yaml")
        elif isinstance(spec, Fifo):
            os.mkfifo(path)
        else:
            path.write_bytes(spec)


def check(repo: HostileRepo) -> None:
    """The property: see the module docstring. Raises AssertionError when it is broken."""
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp) / "repo", Path(tmp) / "outside"
        root.mkdir()
        outside.mkdir()
        for name in ("tier-fast.yaml", "one.yaml", "index.yaml", "x.yaml", "agent.schema.json"):
            (outside / name).write_text(f"description: {OUTSIDE_MARKER}\n")
        _materialize(repo, root, outside)
        messages: list[str] = []
        with _opened_paths() as opened:
            try:
                load_repo(read_work_tree(root))
            except ConfigErrors as exc:
                messages = [str(e) for e in exc.errors]
        beyond = [p for p in opened if p.startswith(str(outside)) or "outside" in p]
        assert not beyond, f"opened beyond the repo: {beyond}"
        for message in messages:
            assert OUTSIDE_MARKER not in message, message
            assert len(message) <= MAX_MESSAGE_CHARS + 400, len(message)
            for secret in repo.planted:
                for piece in _pieces(secret):
                    assert piece not in message, f"secret piece {piece!r} in: {message}"


def _pieces(secret: str, size: int = 12) -> Iterator[str]:
    """Every `size`-character piece of a secret's random part (its prefix is public)."""
    body = secret
    for prefix in (*_PREFIXES, "-----BEGIN RSA PRIVATE KEY-----\n"):
        body = body.removeprefix(prefix)
    body = body.split("\n", 1)[0]
    for i in range(max(0, len(body) - size + 1)):
        yield body[i : i + size]
