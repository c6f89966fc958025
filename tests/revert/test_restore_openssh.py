"""The revert fast path on a real OpenSSH sshd: hardlink@openssh.com + posix-rename, no upload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from reconciler.engine import boxops
from reconciler.model.box import BoxPaths
from reconciler.testing.openssh import OpenSshBox
from reconciler.transport.ssh import SshOptions, SshPool


@dataclass
class Handle:
    """What restore_file uses of a BoxHandle: the name, the transport, the paths."""

    name: str
    box: Any
    paths: BoxPaths


async def test_restore_links_the_history_file_over_the_config_on_openssh(
    openssh_box: OpenSshBox,
) -> None:
    """The kept file becomes the config by a link and a rename; history keeps its copy."""
    config = PurePosixPath(str(openssh_box.root / "etc" / "agent.yaml"))
    paths = BoxPaths.of(str(config))
    old, new = b"model: a\n", b"model: b\n"
    sha_old = hashlib.sha256(old).hexdigest()
    async with SshPool(SshOptions(connect_timeout=5, op_timeout=10)) as pool:
        h = Handle("openssh", pool.box(openssh_box.target()), paths)
        await h.box.write_atomic(config, old)
        await boxops.write_config(h, new, old)  # type: ignore[arg-type]
        assert await boxops.restore_file(h, sha_old) is True  # type: ignore[arg-type]
        assert await boxops.restore_file(h, sha_old) is False  # type: ignore[arg-type]
        assert await h.box.read_file(config) == old
        names = await h.box.listdir(paths.history_dir)
    assert names == sorted([sha_old, hashlib.sha256(new).hexdigest()])
    local = openssh_box.root / "etc"
    assert sorted(p.name for p in local.iterdir()) == ["agent.yaml", "agent.yaml.history"]
    assert (local / "agent.yaml").stat().st_ino == (
        local / "agent.yaml.history" / sha_old
    ).stat().st_ino
