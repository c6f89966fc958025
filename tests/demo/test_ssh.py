"""Demo boxes over SSH and SFTP, with real clients: asyncssh and OpenSSH."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import asyncssh
import pytest

from reconciler.demo import DemoFleet
from reconciler.model.box import BoxPaths, parse_health

from .helpers import openssh_args, write_atomic

CONFIG = "/etc/agent/config.yaml"


def _first(fleet: DemoFleet) -> str:
    return fleet.names[0]


async def _run_openssh(
    *argv: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run, list(argv), input=stdin, capture_output=True, check=False, timeout=60
    )


async def test_openssh_client_runs_the_health_command_with_the_demo_key(
    demo_fleet: DemoFleet, openssh_client: Path
) -> None:
    """OpenSSH reaches a box with DIR's key and known_hosts and runs `agentctl health`."""
    box = demo_fleet.box(_first(demo_fleet))
    done = await _run_openssh(
        str(openssh_client),
        *openssh_args(demo_fleet.dir.root, box.ssh_port),
        "agent@127.0.0.1",
        "agentctl",
        "health",
    )
    assert done.returncode == 0, done.stderr.decode()
    health = parse_health(done.stdout)
    assert health.alive
    assert health.loaded_revision == demo_fleet.first_commit


async def test_other_commands_exit_127(demo_fleet: DemoFleet) -> None:
    """Exec runs only the configured command lines; anything else exits 127."""
    name = _first(demo_fleet)
    async with asyncssh.connect(**demo_fleet.ssh_options(name)) as conn:
        for line in (
            "ls /",
            "agentctl reload --force",
            "sh -c 'agentctl reload'",
            "cat /etc/passwd",
        ):
            done = await conn.run(line, check=False)
            assert done.exit_status == 127, line
    assert demo_fleet.box(name).counters.reloads == 0


async def test_only_the_demo_users_key_logs_in(demo_fleet: DemoFleet, tmp_path: Path) -> None:
    """Another key, or another user with the right key, is refused: public-key auth only."""
    name = _first(demo_fleet)
    other = asyncssh.generate_private_key("ssh-ed25519")
    opts = demo_fleet.ssh_options(name)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(**{**opts, "client_keys": [other]})
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(**{**opts, "username": "root"})
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(**{**opts, "client_keys": [], "password": "agent"})


async def test_atomic_write_lands_at_the_absolute_path_inside_the_box(
    demo_fleet: DemoFleet,
) -> None:
    """A temp-file + fsync + posix-rename write of /etc/agent/config.yaml lands in the box root."""
    name = _first(demo_fleet)
    box = demo_fleet.box(name)
    data = b"model: claude-haiku-4-5\nprompt: hi\nmax_tokens: 100\n"
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(name)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert await sftp.realpath(".") == "/"
        await write_atomic(sftp, CONFIG, data)
    assert box.path(CONFIG).read_bytes() == data
    assert box.root / "etc/agent/config.yaml" == box.path(CONFIG)
    assert not box.path("/etc/agent/.config.yaml.new").exists()
    assert box.counters.writes == 1
    assert box.counters.config_bytes_received == len(data)


async def test_mkdir_of_an_existing_lease_dir_fails(demo_fleet: DemoFleet) -> None:
    """mkdir is atomic: a second connection taking the same lease directory gets an error."""
    name = _first(demo_fleet)
    lease = str(BoxPaths.of(CONFIG).lease_dir)
    opts = demo_fleet.ssh_options(name)
    async with (
        asyncssh.connect(**opts) as one,
        asyncssh.connect(**opts) as two,
        one.start_sftp_client() as first,
        two.start_sftp_client() as second,
    ):
        await first.mkdir(lease)
        with pytest.raises(asyncssh.SFTPError):
            await second.mkdir(lease)
    assert demo_fleet.box(name).path(lease).is_dir()


@pytest.mark.parametrize(
    "path",
    [
        "/../../../etc/passwd",
        "../outside",
        "/etc/agent/../../../x",
        "/etc/agent/\0config.yaml",
        "/link-out/passwd",
        "/link-out",
    ],
)
async def test_escapes_from_the_box_root_are_refused(demo_fleet: DemoFleet, path: str) -> None:
    """`..` above the root, NUL bytes and symlinks pointing out are refused, reading or writing."""
    name = _first(demo_fleet)
    box = demo_fleet.box(name)
    outside = box.root.parent / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("secret outside\n")
    (box.root / "link-out").symlink_to(outside)
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(name)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        with pytest.raises((asyncssh.SFTPError, ValueError)):
            async with sftp.open(path, "rb") as f:
                await f.read()
        with pytest.raises((asyncssh.SFTPError, ValueError)):
            async with sftp.open(path, "wb") as f:
                await f.write(b"x")
    assert (outside / "passwd").read_text() == "secret outside\n"
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]


async def test_symlinks_pointing_out_cannot_be_created(demo_fleet: DemoFleet) -> None:
    """An SFTP symlink whose target leaves the root is refused."""
    name = _first(demo_fleet)
    box = demo_fleet.box(name)
    async with (
        asyncssh.connect(**demo_fleet.ssh_options(name)) as conn,
        conn.start_sftp_client() as sftp,
    ):
        with pytest.raises(asyncssh.SFTPError):
            await sftp.symlink("../../../../../../etc", "/etc/agent/escape")
        await sftp.symlink("/etc/agent/config.yaml", "/etc/agent/inside")
    assert not box.path("/etc/agent/escape").is_symlink()
    assert box.path("/etc/agent/inside").read_bytes() == box.path(CONFIG).read_bytes()


async def test_openssh_sftp_puts_fsyncs_and_renames_over_the_config(
    demo_fleet: DemoFleet, openssh_client: Path, tmp_path: Path
) -> None:
    """OpenSSH sftp: `put -f` (fsync@openssh.com), then `rename` (posix-rename) over the config."""
    sftp_bin = openssh_client.with_name("sftp")
    name = _first(demo_fleet)
    box = demo_fleet.box(name)
    local = tmp_path / "new.yaml"
    local.write_bytes(b"model: claude-haiku-4\nprompt: hello\n")
    batch = tmp_path / "batch"
    batch.write_text(
        f"put -f {local} /etc/agent/.config.yaml.new\n"
        "rename /etc/agent/.config.yaml.new /etc/agent/config.yaml\n"
        "mkdir /etc/agent/config.yaml.lease\n"
        "-mkdir /etc/agent/config.yaml.lease\n"
        f"-get /../../etc/hostname {tmp_path / 'escaped'}\n"
    )
    done = await _run_openssh(
        str(sftp_bin),
        *openssh_args(demo_fleet.dir.root, box.ssh_port, sftp=True),
        "-b",
        str(batch),
        "agent@127.0.0.1",
    )
    assert done.returncode == 0, done.stderr.decode()
    assert box.path(CONFIG).read_bytes() == local.read_bytes()
    assert box.path("/etc/agent/config.yaml.lease").is_dir()
    assert not (tmp_path / "escaped").exists()
