"""Where a demo fleet keeps its files, and the keys and secrets it writes there.

```
DIR/fleet/            the config repo (git), the only thing under version control
DIR/id_ed25519[.pub]  the client key every box accepts (for the demo user)
DIR/known_hosts       [127.0.0.1]:PORT lines for every box's host key
DIR/fleet.key         the fingerprint key (secrets.fleet_key_file)
DIR/secrets/NAME      secret values (secrets.files), outside the repo's git tree
DIR/provider/         the demo model provider's valid keys, as digests (demo/provider.py)
DIR/boxes/NAME/root/  each box's `/` as SFTP sees it; host key beside it
DIR/demo.json         what runs: agents, ports, worker pids
DIR/demo.pid          worker pids, one a line, while the fleet runs
DIR/logs/, DIR/run/   worker logs, worker specs and readiness files
```
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from reconciler.demo import provider

SECRET_NAMES = ("anthropic_api_key", "kb_token")
STATE_FILE = "demo.json"


@dataclass(frozen=True, slots=True)
class DemoDir:
    """The paths of one demo fleet directory."""

    root: Path

    @property
    def repo(self) -> Path:
        return self.root / "fleet"

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def fleet_key(self) -> Path:
        return self.root / "fleet.key"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def boxes(self) -> Path:
        return self.root / "boxes"

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def reconciler_state(self) -> Path:
        """The journal and lock of the reconcile commands run against this demo fleet."""
        return self.root / "state"

    @property
    def pidfile(self) -> Path:
        return self.root / "demo.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def box_root(self, name: str) -> Path:
        return self.boxes / name / "root"

    def host_key(self, name: str) -> Path:
        return self.boxes / name / "ssh_host_ed25519_key"

    def secret_file(self, name: str) -> Path:
        return self.secrets / name

    def generated(self) -> list[Path]:
        """Everything `prepare` writes (and removes before writing anew)."""
        return [
            self.repo,
            self.key,
            self.key.with_suffix(".pub"),
            self.known_hosts,
            self.fleet_key,
            self.secrets,
            self.root / provider.PROVIDER_DIR,
            self.boxes,
            self.logs,
            self.run,
            self.state,
            self.pidfile,
        ]


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_client_key(d: DemoDir) -> asyncssh.SSHKey:
    """The client key pair the product logs in with."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment="reconcile-demo")
    write_private(d.key, key.export_private_key("openssh"))
    d.key.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
    return key


def write_host_key(d: DemoDir, name: str) -> asyncssh.SSHKey:
    """A box's host key; returns it (the known_hosts line is made from it)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"demo-box {name}")
    write_private(d.host_key(name), key.export_private_key("openssh"))
    return key


def known_hosts_line(port: int, key: asyncssh.SSHKey) -> str:
    """The known_hosts entry of a box on 127.0.0.1:`port` (OpenSSH's [host]:port form)."""
    public = key.export_public_key("openssh").decode().split()
    return f"[127.0.0.1]:{port} {public[0]} {public[1]}\n"


def write_secrets(d: DemoDir) -> None:
    """Demo secret values and the fleet key, mode 0600, no trailing newline."""
    api_key = f"sk-demo-{secrets.token_hex(16)}"
    write_private(d.secret_file("anthropic_api_key"), api_key.encode())
    provider.issue(d.root, api_key)  # the provider accepts the demo's initial key
    write_private(d.secret_file("kb_token"), f"kb-demo-{secrets.token_hex(16)}".encode())
    write_private(d.fleet_key, secrets.token_hex(32).encode())
