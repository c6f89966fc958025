"""A small fleet of real OpenSSH boxes on loopback, each running a real agent process.

`RealFleet(dir, agents=5)` is a context manager. Starting it writes, in `dir`, what
`reconcile demo up` writes (the same layout, demo/layout.py): one client key, the
age identity and fleet key, the demo secrets (the first API key issued at the
provider's valid-key file DIR/provider/valid_keys.json), and the config repo
DIR/fleet built by the demo's own `write_repo` from fleet-config-example (the real
fleet.yaml, gates on, the demo's soak and windows). Then per box, under
DIR/boxes/NAME/:

- a real sshd (testing/openssh.py: its own host key and port, a private mount
  namespace so root's shell startup is not sourced, `agentctl` first on PATH);
- the box directory `box/`: the agent's config at `box/etc/agent/config.yaml` (its
  `config_path` in the shard file, under `connection.allowed_paths` = DIR/boxes),
  seeded with the repo's first commit by the demo's `seed_boxes` (a real box's `/` is
  the machine's `/`), and `box/run/` with the agent's scripts, pid, log and reloads;
- the real agent process (testing/realagent.py: the demo's SimAgent with health and
  Prometheus metrics over HTTP on its own port, reload by SIGHUP, auth errors when
  the key it sends is not valid at the provider).

The fleet runs the example's `agentctl reload|restart|health` commands as the demo
does; nothing in reconciler/ knows which fleet it talks to. `fleet.view` is a
`journeys.Demo` over it (truths, commits, secrets, `assert_converged`); it has no
fault API. Leaving the block stops every agent (by its pid file: restarted ones too)
and every sshd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from reconciler.demo.fleetrepo import DemoAgent, agent_names, write_repo
from reconciler.demo.layout import DemoDir, write_client_key, write_secrets
from reconciler.demo.seed import seed_boxes
from reconciler.testing.journeys import BoxFiles, Demo, JourneyError, Result
from reconciler.testing.openssh import OpenSshBox, OpenSshUnavailable
from reconciler.testing.realagent import RealAgent

DEFAULT_AGENTS = 5
DEFAULT_RATE = 10.0  # tasks/s: a canary finishes the demo gates' 30 samples within a 5 s soak
STATE_FILE = "realfleet.json"


@dataclass(frozen=True, slots=True)
class RealDir(DemoDir):
    """The demo's directory layout; a real box's `/` is this machine's `/`."""

    def box_root(self, name: str) -> Path:
        return Path("/")


@dataclass
class RealBox:
    """One box: its sshd, its agent, and where its agent's config lives."""

    name: str
    shard: str
    tier: str
    ssh: OpenSshBox
    agent: RealAgent

    @property
    def config_path(self) -> Path:
        return config_path(self.ssh)


def config_path(ssh: OpenSshBox) -> Path:
    """Where a box's agent config lives: under its box directory, as /etc/agent/ would."""
    return ssh.root / "etc" / "agent" / "config.yaml"


class RealFleetView(Demo):
    """A `journeys.Demo` over a RealFleet: truths, commits and secrets, no fault API."""

    def files(self, agent: str) -> BoxFiles:
        config = PurePosixPath(self.info["agents"][agent]["config_path"])
        secrets = config.with_name(f"{config.stem}.secrets.json")
        return BoxFiles(Path(config), Path(secrets))

    def stop(self) -> Result:
        raise JourneyError("a real fleet is stopped by leaving its RealFleet block")

    def counters(self, agent: str) -> dict[str, int]:
        raise JourneyError("real boxes have no /_demo/ counters")

    def fault(self, agent: str, kind: str, value: float | None = None) -> dict[str, Any]:
        raise JourneyError("real boxes have no /_demo/ fault API")

    def clear(self, agent: str, kind: str | None = None) -> None:
        raise JourneyError("real boxes have no /_demo/ fault API")


class RealFleet:
    """N real sshd boxes with real agents, and their config repo (see the module doc)."""

    def __init__(
        self, dir: Path, agents: int = DEFAULT_AGENTS, *, rate: float = DEFAULT_RATE
    ) -> None:
        self.dir = RealDir(dir.absolute())
        self.size = agents
        self.rate = rate
        self.boxes: dict[str, RealBox] = {}
        self.first = self.head = ""
        self.view = RealFleetView(self.dir.root)

    def start(self) -> RealFleet:
        """Keys, boxes, repo, seed, agents; everything started is stopped on failure."""
        if (why := OpenSshBox.why_unavailable()) is not None:
            raise OpenSshUnavailable(why)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        d = self.dir
        d.root.mkdir(parents=True, exist_ok=True)
        write_client_key(d)
        for i, (name, shard, tier) in enumerate(agent_names(self.size)):
            workdir = d.boxes / name
            run_dir = workdir / "box" / "run"
            ssh = OpenSshBox(workdir, client_key=d.key, path_prepend=run_dir)
            agent = RealAgent(
                run_dir, config_path(ssh), name=name, provider_dir=d.root, rate=self.rate, seed=i
            )
            self.boxes[name] = RealBox(name, shard, tier, ssh, agent.install())
            ssh.start()
        d.known_hosts.write_text(
            "".join(b.ssh.known_hosts.read_text(encoding="utf-8") for b in self.boxes.values()),
            encoding="utf-8",
        )
        secrets = write_secrets(d)
        agents = [
            DemoAgent(b.name, b.shard, b.tier, b.ssh.port, b.agent.port, str(b.config_path))
            for b in self.boxes.values()
        ]
        user = next(iter(self.boxes.values())).ssh.user
        self.first, self.head = write_repo(
            d, agents, secrets, user=user, allowed_paths=[str(d.boxes)]
        )
        seed_boxes(d, self.first)
        for box in self.boxes.values():
            box.agent.start()
        info = {
            "version": 1,
            "dir": str(d.root),
            "repo": str(d.repo),
            "user": user,
            "first_commit": self.first,
            "head_commit": self.head,
            "agents": {
                b.name: {
                    "shard": b.shard,
                    "tier": b.tier,
                    "ssh_port": b.ssh.port,
                    "http_port": b.agent.port,
                    "config_path": str(b.config_path),
                    "run_dir": str(b.agent.run_dir),
                }
                for b in self.boxes.values()
            },
        }
        (d.root / STATE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        self.view.info = info

    def stop(self) -> None:
        """Every agent (the one its pid file names), then every sshd."""
        errors = []
        for box in self.boxes.values():
            try:
                box.agent.stop()
            except OSError as exc:
                errors.append(f"{box.name}: {exc}")
            box.ssh.stop()
        if errors:
            raise RuntimeError("agents did not stop: " + "; ".join(errors))

    def __enter__(self) -> RealFleet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- for tests ---------------------------------------------------------------------

    def pids(self) -> dict[str, int | None]:
        """Each box's agent pid (its pid file)."""
        return {n: b.agent.pid() for n, b in self.boxes.items()}

    def reloads(self) -> dict[str, str]:
        """Each box's last reload line (`COUNT ok` or `COUNT failed: WHY`)."""
        return {
            n: (b.agent.run_dir / "reloads").read_text(encoding="utf-8").strip()
            for n, b in self.boxes.items()
        }
