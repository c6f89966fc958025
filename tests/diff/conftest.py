"""Fixtures of the diff tests: the example repo's files, loaded, and a way to edit them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.repo import Repo, load_repo
from reconciler.repo import read_work_tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"

Edit = Callable[..., dict[str, bytes]]


@pytest.fixture(scope="session")
def example_files() -> dict[str, bytes]:
    """The reference repo's files (do not mutate: edit copies)."""
    return dict(read_work_tree(EXAMPLE))


@pytest.fixture(scope="session")
def example_repo(example_files: dict[str, bytes]) -> Repo:
    """The reference repo, loaded."""
    return load_repo(example_files)


def edit_files(files: dict[str, bytes], path: str, old: str, new: str) -> dict[str, bytes]:
    """A copy of `files` with one exact text replaced in one file (which must hold it)."""
    text = files[path].decode()
    assert old in text, f"{old!r} not in {path}"
    return {**files, path: text.replace(old, new, 1).encode()}


@pytest.fixture(scope="session")
def edit() -> Edit:
    """edit_files, as a fixture."""
    return edit_files


def tiny_files(agents: int = 4, model: str = "claude-haiku-4-5") -> dict[str, bytes]:
    """A small valid repo in memory: fleet 'lab', tier fast, shard lab, `agents` agents."""
    entries = "".join(
        f"  - name: lab-fast-{i:03d}\n    tier: fast\n    host: 127.0.0.1\n    port: {2200 + i}\n"
        for i in range(1, agents + 1)
    )
    return {
        "fleet.yaml": (
            b"fleet_id: lab\nconnection:\n  allowed_paths: [/etc/agent]\n"
            b"review:\n  cost_impacting_approvers: ['@lab/leads']\n"
        ),
        "agents/_base.yaml": (
            "config_path: /etc/agent/config.yaml\n"
            "config:\n"
            f"  model: {model}\n"
            "  prompt: hi\n"
            "  max_tokens: 512\n"
            "  api_key: {secret: api_key}\n"
        ).encode(),
        "agents/tier-fast.yaml": b"config:\n  concurrency: 4\n",
        "secrets/index.yaml": b"secrets:\n  - name: api_key\n  - name: api_key_v2\n",
        "shards/lab.yaml": f"agents:\n{entries}".encode(),
        "schemas/agent.schema.json": (EXAMPLE / "schemas" / "agent.schema.json").read_bytes(),
    }
