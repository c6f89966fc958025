"""Setting up a demo fleet directory: ports, keys, secrets, the config repo, seeded boxes.

`prepare` binds every box's two listening sockets first (so the ports are
known and held), then writes everything the boxes and the product need. The
caller runs the boxes on those sockets: in its own event loop (tests) or in
worker processes (the CLI and the benchmarks).
"""

from __future__ import annotations

import json
import resource
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.demo.box import BoxSpec
from reconciler.demo.fleetrepo import COMMANDS, DemoAgent, DemoSetupError, agent_names, write_repo
from reconciler.demo.layout import (
    DemoDir,
    known_hosts_line,
    write_client_key,
    write_host_key,
    write_secrets,
)
from reconciler.demo.seed import seed_boxes
from reconciler.demo.ssh import listening_socket

DEMO_USER = "agent"
MAX_AGENTS = 5000


def raise_open_file_limit(wanted: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards `wanted` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass
class Prepared:
    """A demo fleet directory ready to run: specs of the boxes and their bound sockets."""

    dir: DemoDir
    agents: list[DemoAgent]
    specs: list[BoxSpec]
    sockets: dict[str, tuple[socket.socket, socket.socket]]
    first: str
    head: str
    user: str = DEMO_USER
    extra: dict[str, Any] = field(default_factory=dict)

    def close_sockets(self) -> None:
        for ssh, http in self.sockets.values():
            ssh.close()
            http.close()


def _clean(d: DemoDir) -> None:
    if d.root.exists() and any(d.root.iterdir()) and not d.state.exists():
        raise DemoSetupError(
            f"{d.root} is not empty and holds no demo fleet (no {d.state.name}); "
            "pick a new or empty --dir"
        )
    for path in d.generated():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def prepare(
    root: Path,
    agents: int,
    *,
    rate: float = 2.0,
    base_error_rate: float = 0.01,
    seed: int = 0,
    user: str = DEMO_USER,
) -> Prepared:
    """Write a demo fleet directory for `agents` boxes and bind their sockets."""
    if not 1 <= agents <= MAX_AGENTS:
        raise DemoSetupError(f"--agents must be 1..{MAX_AGENTS}, got {agents}")
    d = DemoDir(root.resolve())
    _clean(d)
    d.root.mkdir(parents=True, exist_ok=True)
    d.state.write_text('{"version": 1, "preparing": true}\n', encoding="utf-8")  # ours from now
    raise_open_file_limit(4 * agents + 256)
    sockets: dict[str, tuple[socket.socket, socket.socket]] = {}
    try:
        demo_agents = []
        for name, shard, tier in agent_names(agents):
            ssh, http = listening_socket(), listening_socket()
            sockets[name] = (ssh, http)
            demo_agents.append(
                DemoAgent(name, shard, tier, ssh.getsockname()[1], http.getsockname()[1])
            )
        write_client_key(d)
        lines = [known_hosts_line(a.ssh_port, write_host_key(d, a.name)) for a in demo_agents]
        d.known_hosts.write_text("".join(lines), encoding="utf-8")
        secrets = write_secrets(d)
        first, head = write_repo(d, demo_agents, secrets, user=user, rate=rate)
        seeded = seed_boxes(d, first)
    except BaseException:
        for ssh, http in sockets.values():
            ssh.close()
            http.close()
        raise
    specs = [
        BoxSpec(
            name=a.name,
            root=str(d.box_root(a.name)),
            host_key=str(d.host_key(a.name)),
            client_pub=str(d.key.with_suffix(".pub")),
            user=user,
            config_path=seeded[a.name].config_path,
            secrets_path=seeded[a.name].secrets_path,
            commands={k: list(v) for k, v in COMMANDS.items()},
            rate=rate,
            base_error_rate=base_error_rate,
            seed=seed,
        )
        for a in demo_agents
    ]
    for spec in specs:
        Path(spec.root).chmod(0o755)
    return Prepared(d, demo_agents, specs, sockets, first, head, user)


def write_state(p: Prepared, workers: list[dict[str, Any]]) -> None:
    """DIR/demo.json: the agents, their ports and boxes, and the processes running them."""
    doc = {
        "version": 1,
        "dir": str(p.dir.root),
        "repo": str(p.dir.repo),
        "user": p.user,
        "first_commit": p.first,
        "head_commit": p.head,
        "agents": {
            a.name: {
                "shard": a.shard,
                "tier": a.tier,
                "ssh_port": a.ssh_port,
                "http_port": a.http_port,
                "root": str(p.dir.box_root(a.name)),
                "worker": next(
                    (i for i, w in enumerate(workers) if a.name in w.get("agents", ())), None
                ),
            }
            for a in p.agents
        },
        "workers": [{k: v for k, v in w.items() if k != "agents"} for w in workers],
    }
    tmp = p.dir.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(p.dir.state)
