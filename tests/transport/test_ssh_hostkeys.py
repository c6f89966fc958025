"""Host keys are checked against known_hosts before any byte of config moves."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from reconciler.testing.sshserver import LoopbackSshServer
from reconciler.transport.base import HostKeyError
from reconciler.transport.hostkeys import fingerprint
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget

from .conftest import Sleeps


async def _try_write_and_read(pool: SshPool, target: SshTarget, box_dir: Path) -> HostKeyError:
    box = pool.box(target)
    with pytest.raises(HostKeyError) as write_err:
        await box.write_atomic(box_dir / "agent.yaml", b"model: x\n")
    with pytest.raises(HostKeyError):
        await box.read_file(box_dir / "agent.yaml")
    return write_err.value


async def test_unknown_host_key_is_refused_before_anything_moves(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, box_dir: Path, tmp_path: Path
) -> None:
    """A host absent from known_hosts is refused, naming the presented key and the empty file."""
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    err = await _try_write_and_read(pool, replace(target, known_hosts=empty), box_dir)
    assert err.box == "box-1"
    assert not err.changed
    assert f"[127.0.0.1]:{ssh_server.port}" in str(err)
    assert fingerprint(ssh_server.host_key) in str(err)
    assert f"none for it in {empty}" in str(err)
    assert f"ssh-keyscan -p {ssh_server.port} 127.0.0.1 >> {empty}" in str(err)
    assert "trust_on_first_use" not in str(err)  # no CLI option of that name exists
    assert list(box_dir.iterdir()) == []
    assert ssh_server.stats.logins == 0
    assert ssh_server.stats.sftp_sessions == 0


async def test_changed_host_key_is_refused_naming_both_keys(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, box_dir: Path, tmp_path: Path
) -> None:
    """A host whose key differs from the one on file is refused with both fingerprints."""
    other = asyncssh.generate_private_key("ssh-ed25519")
    alg, blob = other.export_public_key().decode().split()[:2]
    kh = tmp_path / "changed_known_hosts"
    kh.write_text(f"[127.0.0.1]:{ssh_server.port} {alg} {blob}\n")
    (box_dir / "agent.yaml").write_bytes(b"old\n")
    err = await _try_write_and_read(pool, replace(target, known_hosts=kh), box_dir)
    assert err.changed
    assert str(err).startswith("box-1: connect: host key changed")
    assert f"ssh-keygen -R '[127.0.0.1]:{ssh_server.port}' -f {kh}" in str(err)
    assert fingerprint(ssh_server.host_key) in str(err)
    assert fingerprint(other) in str(err)
    assert (box_dir / "agent.yaml").read_bytes() == b"old\n"
    assert sorted(p.name for p in box_dir.iterdir()) == ["agent.yaml"]
    assert ssh_server.stats.logins == 0
    assert ssh_server.stats.sftp_sessions == 0


async def test_host_key_refusal_is_not_retried(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path, sleeps: Sleeps
) -> None:
    """A refused host key is final: one connection attempt, no backoff, cached for the pool."""
    empty = tmp_path / "none"
    box = pool.box(replace(target, known_hosts=empty))
    for _ in range(2):
        with pytest.raises(HostKeyError):
            await box.run(["true"], timeout=5)
    assert ssh_server.stats.connections == 1
    assert sleeps.delays == []


async def test_portless_entry_does_not_vouch_for_another_port(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """As in OpenSSH, a bare `127.0.0.1 KEY` line covers port 22 only, not [127.0.0.1]:PORT."""
    alg, blob = ssh_server.host_key.export_public_key().decode().split()[:2]
    kh = tmp_path / "bare"
    kh.write_text(f"127.0.0.1 {alg} {blob}\n")
    with pytest.raises(HostKeyError):
        await pool.box(replace(target, known_hosts=kh)).run(["true"], timeout=5)


async def test_hashed_known_hosts_entry_is_accepted(
    pool: SshPool, target: SshTarget, known_hosts: Path
) -> None:
    """A known_hosts file hashed by `ssh-keygen -H` still vouches for the box."""
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
    assert known_hosts.read_text().startswith("|1|")
    result = await pool.box(target).run(["echo", "ok"], timeout=5)
    assert result.stdout == "ok\n"


async def test_trust_on_first_use_records_the_key(
    target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """With the flag, an unknown host is accepted and its key recorded for the next run."""
    kh = tmp_path / "tofu" / "known_hosts"
    t = replace(target, known_hosts=kh)
    async with SshPool(SshOptions(trust_on_first_use=True)) as pool:
        assert (await pool.box(t).run(["true"], timeout=5)).ok
    assert kh.read_text() == ssh_server.known_hosts_line()
    async with SshPool(SshOptions()) as pool:
        assert (await pool.box(t).run(["true"], timeout=5)).ok


async def test_trust_on_first_use_never_accepts_a_changed_key(
    target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """The flag covers unknown hosts only: a changed key is refused and the file left alone."""
    other = asyncssh.generate_private_key("ssh-ed25519")
    alg, blob = other.export_public_key().decode().split()[:2]
    kh = tmp_path / "known_hosts_changed"
    kh.write_text(f"[127.0.0.1]:{ssh_server.port} {alg} {blob}\n")
    before = kh.read_text()
    async with SshPool(SshOptions(trust_on_first_use=True)) as pool:
        with pytest.raises(HostKeyError) as err:
            await pool.box(replace(target, known_hosts=kh)).run(["true"], timeout=5)
    assert err.value.changed
    assert kh.read_text() == before
