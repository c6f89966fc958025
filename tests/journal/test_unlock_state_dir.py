"""`reconcile unlock` looks for the lock where apply takes it: fleet.yaml's state_dir.

And the holder identity every lock and lease carries never fails for a user
without a passwd entry (containers: a bare uid, no USER).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.app.state import holder_id, open_state
from reconciler.journal.base import Holder
from reconciler.journal.lock import SqliteLock
from reconciler.testing.console import reconcile_script

ROOT = Path(__file__).resolve().parents[2]
GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@localhost")


def _fleet_repo(tmp_path: Path, state_dir: Path) -> Path:
    """The example fleet as a git repo whose fleet.yaml sets `state_dir`."""
    repo = tmp_path / "fleet"
    shutil.copytree(ROOT / "fleet-config-example", repo)
    fleet_yaml = repo / "fleet.yaml"
    fleet_yaml.write_text(
        fleet_yaml.read_text(encoding="utf-8") + f"state_dir: {state_dir}\n", encoding="utf-8"
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "fleet"], cwd=repo, check=True)
    return repo


def test_unlock_finds_the_lock_in_fleet_yaml_state_dir(tmp_path: Path) -> None:
    """A lock taken in fleet.yaml's state_dir is found and released by `reconcile unlock`."""
    state = tmp_path / "fleet-state"
    repo = _fleet_repo(tmp_path, state)
    lock = SqliteLock(state)
    try:
        lease = lock.acquire("acme-support", Holder("ci", "runner-7", 4242), ttl_s=600)
    finally:
        lock.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"HOME": str(elsewhere), "XDG_STATE_HOME": str(elsewhere / "xdg")})
    done = subprocess.run(
        [reconcile_script(), "unlock", "--force", lease.lock_id, "--repo", str(repo)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"released lock {lease.lock_id}" in done.stderr
    assert "ci@runner-7 pid 4242" in done.stderr
    lock = SqliteLock(state)
    try:
        assert lock.holder("acme-support") is None
    finally:
        lock.close()
    assert not (elsewhere / "xdg").exists()  # the default state dir was never opened


def test_holder_id_without_a_passwd_entry_or_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """No passwd entry and no USER/LOGNAME: the holder is the uid, not a crash."""

    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert holder_id().startswith(f"{os.getuid()}@")
    assert holder_id().endswith(f" pid {os.getpid()}")


def test_one_holder_for_the_lock_and_the_leases(tmp_path: Path) -> None:
    """open_state hands out one identity: the lock's holder is the leases' holder id."""
    with open_state(None, tmp_path / "state") as state:
        lease = state.lock.acquire("f", state.holder, ttl_s=60)
        assert str(lease.holder) == state.holder_id == holder_id()
