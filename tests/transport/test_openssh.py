"""The SSH transport against a real OpenSSH sshd on loopback (the fixture in reconciler.testing)."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from reconciler.testing.openssh import STARTUP_FILES, OpenSshBox
from reconciler.transport.base import HostKeyError, OperationTimeout
from reconciler.transport.ssh import SshOptions, SshPool


@pytest.fixture
async def pool() -> SshPool:
    return SshPool(SshOptions(connect_timeout=5, op_timeout=10))


async def test_atomic_write_read_and_mkdir_on_openssh(
    openssh_box: OpenSshBox, pool: SshPool
) -> None:
    """Atomic write (with mode), read back, missing file as None, and atomic mkdir on real sshd."""
    path = openssh_box.root / "etc" / "agent.yaml"
    async with pool:
        box = pool.box(openssh_box.target())
        await box.write_atomic(path, b"model: a\n", mode=0o600)
        await box.write_atomic(path, b"model: b\n", mode=0o600)
        assert await box.read_file(path) == b"model: b\n"
        assert await box.read_file(openssh_box.root / "missing") is None
        assert await box.mkdir(openssh_box.root / "agent.yaml.lease") is True
        assert await box.mkdir(openssh_box.root / "agent.yaml.lease") is False
    assert path.read_bytes() == b"model: b\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["agent.yaml"]


async def test_run_on_openssh(openssh_box: OpenSshBox, pool: SshPool) -> None:
    """Commands run through sshd's shell: exit status, output, quoting, and timeouts."""
    async with pool:
        box = pool.box(openssh_box.target())
        r = await box.run(
            ["sh", "-c", 'echo "$1"; echo e >&2; exit 4', "sh", "a 'b' $c"], timeout=5
        )
        assert (r.exit_status, r.stdout, r.stderr) == (4, "a 'b' $c\n", "e\n")
        with pytest.raises(OperationTimeout) as err:
            await box.run(["sleep", "30"], timeout=0.3)
        assert "sleep 30" in str(err.value)


async def test_unknown_and_changed_host_keys_refused_by_openssh_box(
    openssh_box: OpenSshBox, pool: SshPool
) -> None:
    """Against real sshd, unknown and changed host keys are refused and nothing is written."""
    path = openssh_box.root / "agent.yaml"
    empty = openssh_box.workdir / "empty_known_hosts"
    empty.write_text("")
    other = asyncssh.generate_private_key("ssh-ed25519")
    alg, blob = other.export_public_key().decode().split()[:2]
    changed = openssh_box.workdir / "changed_known_hosts"
    changed.write_text(f"[127.0.0.1]:{openssh_box.port} {alg} {blob}\n")
    async with pool:
        for kh, is_changed in ((empty, False), (changed, True)):
            box = pool.box(replace(openssh_box.target(), known_hosts=kh))
            with pytest.raises(HostKeyError) as err:
                await box.write_atomic(path, b"x\n")
            assert err.value.changed is is_changed
            assert openssh_box.host_public_key  # the fixture's key, for the message below
            assert str(kh) in str(err.value)
            assert "SHA256:" in err.value.presented
    assert list(openssh_box.root.iterdir()) == []


async def test_openssh_box_hides_shell_startup_files(
    openssh_box: OpenSshBox, pool: SshPool
) -> None:
    """Commands on the fixture's sshd see empty shell startup files (a lean login environment)."""
    present = [str(p) for f in STARTUP_FILES if (p := Path(f).expanduser()).is_file()]
    async with pool:
        box = pool.box(openssh_box.target())
        for path in present:
            r = await box.run(["wc", "-c", path], timeout=5)
            assert r.stdout.split()[0] == "0", path
