"""Fixtures for every test directory: small and generic; each server stops after its test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.demo import DemoFleet


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "demo_agents(n): how many boxes the demo_fleet fixture starts (default 4)"
    )


@pytest.fixture
async def demo_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """A demo fleet in the test's event loop: 4 boxes (3 tier fast, 1 tier smart) by default."""
    marker = request.node.get_closest_marker("demo_agents")
    agents = marker.args[0] if marker else 4
    async with DemoFleet.start(tmp_path / "demo", agents=agents) as fleet:
        yield fleet


@pytest.fixture
def openssh_client() -> Path:
    """The OpenSSH client binary; fails under CI (env CI set) when it is missing, else skips."""
    found = shutil.which("ssh")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("the OpenSSH client (ssh) is not installed; apt-get install openssh-client")
        pytest.skip("the OpenSSH client (ssh) is not installed")
    return Path(found)
