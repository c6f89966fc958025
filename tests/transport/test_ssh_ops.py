"""Box operations over SFTP and exec against a real asyncssh server on loopback."""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

import pytest

from reconciler.testing.sshserver import LoopbackSshServer
from reconciler.transport.base import OperationTimeout, RemoteError
from reconciler.transport.ssh import SshBox, SshPool, SshTarget


@pytest.fixture
def box(pool: SshPool, target: SshTarget) -> SshBox:
    return pool.box(target)


async def test_atomic_write_lands_with_mode_and_parents(box: SshBox, box_dir: Path) -> None:
    """write_atomic creates missing parents, lands the bytes with the mode, leaves no temp file."""
    path = box_dir / "etc" / "agent" / "secrets.json"
    await box.write_atomic(path, b'{"k": "v"}\n', mode=0o600)
    assert path.read_bytes() == b'{"k": "v"}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]


async def test_atomic_write_replaces_an_existing_file(box: SshBox, box_dir: Path) -> None:
    """A second write replaces the file whole, and the mode follows the new write."""
    path = box_dir / "agent.yaml"
    path.write_bytes(b"old\n")
    await box.write_atomic(path, b"new\n", mode=0o640)
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


async def test_failed_write_leaves_the_old_file(
    box: SshBox, box_dir: Path, ssh_server: LoopbackSshServer
) -> None:
    """A write failing on the box (disk full) leaves the old file and no temp file."""
    path = box_dir / "agent.yaml"
    path.write_bytes(b"old\n")
    ssh_server.faults.fail_writes = True
    with pytest.raises(RemoteError) as err:
        await box.write_atomic(path, b"new\n")
    assert err.value.box == "box-1"
    assert err.value.operation == f"write {path}"
    assert "No space left on device" in str(err.value)
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in box_dir.iterdir()] == ["agent.yaml"]


async def test_read_file_of_a_missing_file_is_none(box: SshBox, box_dir: Path) -> None:
    """A missing file reads as None, an existing one as its bytes."""
    assert await box.read_file(box_dir / "nope") is None
    (box_dir / "f").write_bytes(b"\x00\xffbytes")
    assert await box.read_file(box_dir / "f") == b"\x00\xffbytes"


async def test_mkdir_is_atomic(box: SshBox, box_dir: Path) -> None:
    """The first mkdir creates the directory, the second says it already existed."""
    lease = box_dir / "agent.yaml.lease"
    assert await box.mkdir(lease) is True
    assert await box.mkdir(lease) is False
    assert lease.is_dir()
    assert await box.mkdir(box_dir / "new" / "x.lease") is True


async def test_run_returns_exit_status_and_output(box: SshBox) -> None:
    """A command's exit status, stdout and stderr come back; non-zero is a result."""
    ok = await box.run(["printf", "%s|", "a b", "it's", "$HOME"], timeout=5)
    assert (ok.exit_status, ok.stdout, ok.stderr) == (0, "a b|it's|$HOME|", "")
    bad = await box.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=5)
    assert (bad.exit_status, bad.stdout, bad.stderr, bad.ok) == (3, "out\n", "err\n", False)


async def test_run_timeout_names_the_box_and_the_command(box: SshBox) -> None:
    """A command outliving its timeout raises OperationTimeout naming box and command."""
    with pytest.raises(OperationTimeout) as err:
        await box.run(["sleep", "30"], timeout=0.3)
    assert err.value.box == "box-1"
    assert "sleep 30" in str(err.value)
    assert (await box.run(["true"], timeout=5)).ok  # the connection still works


async def test_listdir_stat_rename_remove_rmtree(box: SshBox, box_dir: Path) -> None:
    """The small file operations act like their POSIX namesakes; missing things are no error."""
    hist = box_dir / "agent.yaml.history"
    await box.write_atomic(hist / "b", b"bb")
    await box.write_atomic(hist / "a", b"a", mode=0o600)
    assert await box.listdir(hist) == ["a", "b"]
    assert await box.listdir(box_dir / "missing") == []
    st = await box.stat(hist / "b")
    assert st is not None
    assert st.size == 2
    assert stat.S_IMODE(st.mode) == 0o644
    assert await box.stat(hist / "missing") is None
    await box.rename(hist / "a", hist / "b")
    assert (hist / "b").read_bytes() == b"a"
    await box.remove(hist / "b")
    await box.remove(hist / "b")
    assert await box.listdir(hist) == []
    await box.write_atomic(hist / "c", b"c")
    await box.rmtree(hist)
    await box.rmtree(hist)
    assert not hist.exists()


async def test_relative_paths_are_refused(box: SshBox) -> None:
    """Box paths are absolute: a relative one is a programming error, not a transport one."""
    with pytest.raises(ValueError, match="absolute"):
        await box.read_file(PurePosixPath("etc/agent.yaml"))
