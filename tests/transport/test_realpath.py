"""`BoxTransport.realpath`: the box's canonical path, so a symlinked parent is seen before a write.

The engine resolves a config file's parent on the box before its first write and
checks it is still under connection.allowed_paths; this is the transport's half.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from reconciler.transport.base import BoxTransport, RemoteError
from reconciler.transport.fake import FakeBox
from reconciler.transport.ssh import SshPool, SshTarget


def test_realpath_is_part_of_the_box_protocol() -> None:
    """Every transport offers realpath; the fake one is still a BoxTransport."""
    assert "realpath" in BoxTransport.__dict__
    assert isinstance(FakeBox("b"), BoxTransport)


async def test_fake_box_resolves_dots_and_symlinks() -> None:
    """The fake box normalises `.`/`..` and follows its symlinks, counting a round trip."""
    box = FakeBox("b", files={"/etc/agent/config.json": b"{}"})
    got = await box.realpath(PurePosixPath("/srv/../etc/./agent/config.json"))
    assert got == PurePosixPath("/etc/agent/config.json")
    box.symlinks[PurePosixPath("/srv/agent")] = PurePosixPath("/root/.ssh")
    box.symlinks[PurePosixPath("/srv/rel")] = PurePosixPath("agent/x")
    assert await box.realpath(PurePosixPath("/srv/agent/keys")) == PurePosixPath("/root/.ssh/keys")
    assert await box.realpath(PurePosixPath("/srv/rel")) == PurePosixPath("/root/.ssh/x")
    assert box.counts["realpath"] == 3


async def test_fake_box_refuses_a_symlink_loop() -> None:
    """A link loop is a RemoteError, as ELOOP is on a real box."""
    box = FakeBox("b")
    box.symlinks[PurePosixPath("/a")] = PurePosixPath("/b")
    box.symlinks[PurePosixPath("/b")] = PurePosixPath("/a")
    with pytest.raises(RemoteError, match="symbolic links"):
        await box.realpath(PurePosixPath("/a/x"))


async def test_ssh_realpath_follows_a_symlinked_parent(
    pool: SshPool, target: SshTarget, box_dir: Path, tmp_path: Path
) -> None:
    """Over SFTP, a parent that is a symlink resolves to where it really points."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (box_dir / "etc").mkdir()
    (box_dir / "etc" / "agent").symlink_to(elsewhere)
    box = pool.box(target)
    got = await box.realpath(PurePosixPath(box_dir / "etc" / "agent" / "." / "config.yaml"))
    assert got == PurePosixPath(elsewhere.resolve() / "config.yaml")
    assert await box.realpath(PurePosixPath(box_dir)) == PurePosixPath(box_dir.resolve())
