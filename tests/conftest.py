"""Fixtures for every test directory: small and generic; each server stops after its test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reconciler.demo import DemoFleet
from reconciler.testing.openssh import OpenSshBox, OpenSshUnavailable


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


@pytest.fixture
def openssh_box(tmp_path: Path) -> Iterator[OpenSshBox]:
    """A real OpenSSH sshd on loopback; fails (never skips) under CI when it cannot start."""
    box = OpenSshBox(tmp_path / "openssh")
    try:
        box.start()
    except OpenSshUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"real OpenSSH fixture could not start: {exc}")
        pytest.skip(f"real OpenSSH fixture could not start: {exc}")
    try:
        yield box
    finally:
        box.stop()
