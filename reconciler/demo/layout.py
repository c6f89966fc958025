"""Where a demo fleet keeps its files, and the keys and secrets it writes there.

```
DIR/fleet/            the config repo (git), the only thing under version control
DIR/id_ed25519[.pub]  the client key every box accepts (for the demo user)
DIR/known_hosts       [127.0.0.1]:PORT lines for every box's host key
DIR/fleet.key         the fingerprint key (secrets.fleet_key_file), beside the identity
DIR/age.key           the age identity (secrets.age.identity_file), 0600, outside the repo
DIR/fleet/secrets/    NAME.age: the secret values, age-encrypted to recipients.txt (committed)
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
from reconciler.secretstore.age import (
    age_file,
    decrypt,
    encrypt,
    generate_identity,
    parse_identities,
    read_recipients,
)
from reconciler.secretstore.repofile import write_secrets_file

# Each demo secret and how its value starts (the demo provider accepts the issued API key).
SECRET_PREFIXES = {
    "anthropic_api_key": "sk-demo-",
    "kb_token": "kb-demo-",
    # The example's alerting routes (fleet.yaml alerting.routes): webhook URLs on loopback.
    "oncall_slack_url": "http://127.0.0.1:9/demo-oncall/",
    "cost_webhook_url": "http://127.0.0.1:9/demo-cost/",
}
SECRET_NAMES = tuple(SECRET_PREFIXES)
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
    def age_identity(self) -> Path:
        """The age identity that decrypts the repo's secrets/NAME.age (outside the repo)."""
        return self.root / "age.key"

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
        """Where secret `name`'s value is: the repo's secrets/NAME.age, age-encrypted."""
        return self.repo / "secrets" / age_file(name)

    def read_secret(self, name: str) -> str:
        """Secret `name`'s value, decrypted with the demo's identity (for tests and checks)."""
        identity = self.age_identity.read_text(encoding="utf-8")
        ids = parse_identities(identity, f"the demo's age identity {self.age_identity}")
        path = self.secret_file(name)
        return decrypt(path.read_bytes(), ids, path)

    def write_secret(self, name: str, value: str) -> None:
        """A new value for `name`, as `reconcile secrets set` writes it: encrypted to the
        repo's recipients into secrets/NAME.age in the work tree, not committed."""
        write_secrets_file(self.repo, age_file(name), encrypt(value, read_recipients(self.repo)))

    def generated(self) -> list[Path]:
        """Everything `prepare` writes (and removes before writing anew)."""
        return [
            self.repo,
            self.key,
            self.key.with_suffix(".pub"),
            self.known_hosts,
            self.fleet_key,
            self.age_identity,
            self.root / "secrets",  # where demo fleets of earlier versions kept values
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


@dataclass(frozen=True, slots=True)
class DemoSecrets:
    """The demo's secret values (to be encrypted into the repo) and its age recipient."""

    values: dict[str, str]
    recipient: str

    def __repr__(self) -> str:
        return f"DemoSecrets(names={sorted(self.values)}, recipient={self.recipient!r})"


def write_secrets(d: DemoDir) -> DemoSecrets:
    """The age identity and the fleet key (0600, in DIR, outside the repo); the demo's
    secret values, which `write_repo` encrypts into the repo's secrets/NAME.age."""
    identity, recipient = generate_identity()
    write_private(d.age_identity, f"# the demo fleet's age identity\n{identity}\n".encode())
    write_private(d.fleet_key, secrets.token_hex(32).encode())
    values = {name: f"{prefix}{secrets.token_hex(16)}" for name, prefix in SECRET_PREFIXES.items()}
    provider.issue(d.root, values["anthropic_api_key"])  # the provider accepts the first key
    return DemoSecrets(values, recipient)
