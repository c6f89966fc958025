"""The example repo's files, read once; tests change copies of them in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.repo import Repo, load_repo
from reconciler.repo import read_work_tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"


@pytest.fixture(scope="session")
def example_files() -> dict[str, bytes]:
    return dict(read_work_tree(EXAMPLE))


@pytest.fixture(scope="session")
def example_repo(example_files: dict[str, bytes]) -> Repo:
    return load_repo(example_files)
