"""What a host-key refusal tells the operator: how to add the key (after checking its
fingerprint out of band), never an option the CLI does not have."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.testing.sshserver import LoopbackSshServer
from reconciler.transport.base import HostKeyError
from reconciler.transport.hostkeys import fingerprint
from reconciler.transport.ssh import SshPool, SshTarget


async def test_an_unknown_host_says_to_check_the_fingerprint_then_keyscan(
    pool: SshPool, target: SshTarget, ssh_server: LoopbackSshServer, tmp_path: Path
) -> None:
    """The message names the fingerprint to check out of band and the ssh-keyscan line."""
    empty = tmp_path / "kh"
    empty.write_text("")
    with pytest.raises(HostKeyError) as err:
        await pool.box(replace(target, known_hosts=empty)).run(["true"], timeout=10)
    msg = str(err.value)
    fp = fingerprint(ssh_server.host_key)
    assert f"check its fingerprint ({fp}) out of band" in msg
    assert f"ssh-keyscan -p {ssh_server.port} 127.0.0.1 >> {empty}" in msg
    assert "trust_on_first_use" not in msg and "--trust" not in msg


def test_port_22_keyscan_line_has_no_port() -> None:
    """On port 22 the line is plain `ssh-keyscan HOST >> FILE`."""
    err = HostKeyError("b", host="h.example", port=22, presented="ssh-ed25519 SHA256:x",
                       expected=[], known_hosts="/kh")  # fmt: skip
    assert "ssh-keyscan h.example >> /kh" in str(err)


def test_a_revoked_key_is_not_to_be_added_again() -> None:
    """A key @revoked in known_hosts: the message says so and gives no keyscan line."""
    err = HostKeyError("b", host="h", port=2222, presented="ssh-ed25519 SHA256:x",
                       expected=["(revoked) ssh-ed25519 SHA256:x"], known_hosts="/kh",
                       revoked=True)  # fmt: skip
    msg = str(err)
    assert "revoked" in msg
    assert "ssh-keyscan" not in msg
    assert "trust_on_first_use" not in msg
