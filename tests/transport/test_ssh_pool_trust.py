"""The pool shares a connection only between targets that trust alike: same host, port,
user, key, known_hosts and host-key policy. A second agent with a stricter known_hosts or
another key gets its own connection and its own checks, never the first one's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from reconciler.testing.sshserver import ClientKey, LoopbackSshServer
from reconciler.transport.base import AuthError, HostKeyError
from reconciler.transport.hostkeys import fingerprint
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget

from .conftest import Sleeps


async def test_a_stricter_known_hosts_does_not_reuse_a_verified_connection(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """Agent 2 (same host, port, user) checks an empty known_hosts: refused, not pooled in."""
    first = pool.box(target)
    assert (await first.run(["true"], timeout=10)).ok
    empty = tmp_path / "strict_known_hosts"
    empty.write_text("")
    second = pool.box(replace(target, name="box-2", known_hosts=empty))
    with pytest.raises(HostKeyError) as err:
        await second.run(["true"], timeout=10)
    assert err.value.box == "box-2"
    assert ssh_server.stats.logins == 1
    assert (await first.run(["true"], timeout=10)).ok  # the first keeps its own


async def test_another_key_does_not_reuse_a_logged_in_connection(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """Agent 2 logs in with a key the box refuses: AuthError, not agent 1's session."""
    assert (await pool.box(target).run(["true"], timeout=10)).ok
    stranger = ClientKey(tmp_path / "keys" / "stranger_ed25519")
    second = pool.box(replace(target, name="box-2", key=stranger.path))
    with pytest.raises(AuthError):
        await second.run(["true"], timeout=10)
    assert ssh_server.stats.logins == 1


async def test_a_changed_key_on_file_for_another_agent_is_refused(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """Agent 2's known_hosts expects another key for the same box: refused, naming both."""
    assert (await pool.box(target).run(["true"], timeout=10)).ok
    other = asyncssh.generate_private_key("ssh-ed25519")
    alg, blob = other.export_public_key().decode().split()[:2]
    kh = tmp_path / "other_known_hosts"
    kh.write_text(f"[127.0.0.1]:{ssh_server.port} {alg} {blob}\n")
    with pytest.raises(HostKeyError) as err:
        await pool.box(replace(target, name="box-2", known_hosts=kh)).run(["true"], timeout=10)
    assert err.value.changed
    assert fingerprint(ssh_server.host_key) in str(err.value)


async def test_targets_that_trust_alike_share_one_connection(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer
) -> None:
    """Two agents on one box with the same key and known_hosts: one connection, one login."""
    await pool.box(target).run(["true"], timeout=10)
    await pool.box(replace(target, name="box-2")).run(["true"], timeout=10)
    assert ssh_server.stats.connections == 1


async def test_the_pool_key_names_everything_that_decides_trust(target: SshTarget) -> None:
    """Key path, known_hosts path and host-key policy are all part of the pool key."""
    keys = {
        target.pool_key,
        replace(target, key=Path("/other/key")).pool_key,
        replace(target, known_hosts=Path("/other/known_hosts")).pool_key,
        replace(target, name="renamed").pool_key,
    }
    assert len(keys) == 3
    opts = SshOptions()
    tofu = replace(opts, trust_on_first_use=True)
    async with SshPool(opts, sleep=Sleeps()) as a, SshPool(tofu, sleep=Sleeps()) as b:
        assert a.key_of(target) != b.key_of(target)
