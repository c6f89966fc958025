"""reconcile demo up, fault, down and the walkthrough: worker processes, real clients."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import demo as demo_cli
from reconciler.cli.app import app
from reconciler.demo.runner import read_info, running_pids
from reconciler.model.box import parse_health

from .helpers import openssh_args

FAST = "us-east-fast-001"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def demo_dir(tmp_path: Path) -> Iterator[Path]:
    """A DIR for `reconcile demo`; whatever runs in it is stopped after the test."""
    d = tmp_path / "D"
    yield d
    if running_pids(d):
        _invoke("demo", "down", "--dir", str(d))


def _ssh(openssh_client: Path, d: Path, port: int, *cmd: str) -> subprocess.CompletedProcess[str]:
    argv = [str(openssh_client), *openssh_args(d, port), "agent@127.0.0.1", *cmd]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def test_up_fault_down_with_the_openssh_client(demo_dir: Path, openssh_client: Path) -> None:
    """up starts reachable boxes; fault and --clear work; down leaves no process or port."""
    code, output = _invoke("demo", "up", "--agents", "3", "--dir", str(demo_dir))
    assert code == 0, output
    assert f"reconcile diff --repo {demo_dir.resolve() / 'fleet'}" in output
    info = read_info(demo_dir)
    assert info is not None
    pids = running_pids(demo_dir)
    assert pids
    assert demo_dir.joinpath("demo.pid").read_text().split() == [str(p) for p in pids]
    port = info.agent(FAST)["ssh_port"]
    done = _ssh(openssh_client, demo_dir, port, "agentctl", "health")
    assert done.returncode == 0, done.stderr
    assert parse_health(done.stdout.encode()).loaded_revision == info.doc["first_commit"]

    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "ssh-refused")
    assert code == 0, output
    assert _ssh(openssh_client, demo_dir, port, "agentctl", "health").returncode == 255
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "clock-skew", "300")
    assert code == 0, output
    assert "clock-skew=300" in output
    health = httpx.get(f"http://127.0.0.1:{info.agent(FAST)['http_port']}/healthz")
    assert parse_health(health.content).heartbeat_age_s >= 300
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "--clear")
    assert code == 0, output
    assert _ssh(openssh_client, demo_dir, port, "agentctl", "health").returncode == 0

    ports = [p for a in info.agents.values() for p in (a["ssh_port"], a["http_port"])]
    code, output = _invoke("demo", "down", "--dir", str(demo_dir))
    assert code == 0, output
    assert running_pids(demo_dir) == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert [p for p in ports if _port_open(p)] == []
    assert not demo_dir.joinpath("demo.pid").exists()


def test_the_walkthrough_starts_validates_and_restarts_a_running_fleet(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reconcile demo` brings a fleet up and validates it; run again, it starts a fresh one."""
    mine = {"_step_up", "_step_validate", "_step_next"}  # the rollout steps have their own tests
    steps = [s for s in demo_cli.WALKTHROUGH if s.run.__name__ in mine]
    assert len(steps) == 3
    monkeypatch.setattr(demo_cli, "WALKTHROUGH", steps)
    code, output = _invoke("demo", "--dir", str(demo_dir), "--agents", "2")
    assert code == 0, output
    assert "ok: 2 agents" in output
    assert f"reconcile demo down --dir {demo_dir}" in output
    pids = running_pids(demo_dir)
    code, output = _invoke("demo", "--dir", str(demo_dir), "--agents", "2")
    assert code == 0, output
    assert "starting afresh" in output
    assert running_pids(demo_dir) and not set(running_pids(demo_dir)) & set(pids)
    code, output = _invoke("demo", "up", "--dir", str(demo_dir))
    assert code == 1
    assert "demo down" in output


def test_up_refuses_a_directory_that_is_not_a_demo_fleet(tmp_path: Path) -> None:
    """A non-empty DIR without demo.json is never wiped."""
    (tmp_path / "precious.txt").write_text("keep me")
    code, output = _invoke("demo", "up", "--agents", "1", "--dir", str(tmp_path))
    assert code == 1
    assert "not empty" in output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_fault_names_the_kinds_and_the_agents(demo_dir: Path) -> None:
    """Errors say what exists: fault kinds, agent names, a missing fleet."""
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "stall")
    assert code == 1
    assert "demo up" in output
    assert _invoke("demo", "up", "--agents", "1", "--dir", str(demo_dir))[0] == 0
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "meltdown")
    assert code == 1
    assert "crash-on-reload" in output
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), "nobody", "stall")
    assert code == 1
    assert FAST in output
    code, output = _invoke("demo", "fault", "--dir", str(demo_dir), FAST, "stall", "3")
    assert code == 1
    assert "takes no value" in output


def test_group_options_before_the_subcommand_are_the_subcommands_options(tmp_path: Path) -> None:
    """`reconcile demo --dir D -n 2 up` starts 2 boxes in D (not 20 in ./demo-fleet), and
    `reconcile demo --dir D down` stops them there."""
    d = tmp_path / "grp"
    try:
        code, output = _invoke("demo", "--dir", str(d), "-n", "2", "up")
        assert code == 0, output
        assert "2 boxes" in output, output
        assert (d / "fleet" / "fleet.yaml").is_file()
        assert not Path("demo-fleet").exists(), "the group's --dir was ignored"
    finally:
        code, output = _invoke("demo", "--dir", str(d), "down")
    assert code == 0, output
    assert f"demo fleet in {d} stopped" in output, output
