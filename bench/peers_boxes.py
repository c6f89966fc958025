"""The boxes of bench_vs_peers.py: N real sshd on loopback, a tiny agent, server CPU, verification.

One sshd per box (reconciler/testing/openssh.py's OpenSshBox: its own host key,
its own directory, a private mount namespace so root's slow shell init is not
sourced). All boxes trust one client key and are listed in one known_hosts file,
so every tool checks host keys the same way.

The agent is two shell scripts every box runs by path (the same files for all
boxes, as a package would install them):
- reload.sh CONFIG: "loads" the config as an agent does on SIGHUP: records the
  sha256 of CONFIG's bytes in CONFIG.loaded (temp + rename);
- health.sh CONFIG: prints the health JSON reconciler expects
  (reconciler/model/box.py Health), loaded_sha256 from CONFIG.loaded.
Each tool writes its own config path on every box (BOX/etc/TOOL/config.yaml),
so one tool's write is never another's drift.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.testing.openssh import OpenSshBox

RELOAD_SH = """\
#!/bin/sh
# reload CONFIG: load the config (record the sha256 of its bytes), as an agent does on SIGHUP.
set -e
sha=$(sha256sum "$1" | cut -d' ' -f1)
printf '%s\\n' "$sha" > "$1.loaded.tmp"
mv "$1.loaded.tmp" "$1.loaded"
"""

HEALTH_SH = """\
#!/bin/sh
# health CONFIG: the health JSON of the agent whose config is CONFIG.
if [ -r "$1.loaded" ]; then sha="\\"$(cat "$1.loaded")\\""; else sha=null; fi
printf '{"alive": true, "heartbeat_age_s": 0, "loaded_sha256": %s, ' "$sha"
printf '"agent_version": "bench-agent/1", "tasks_processed": 0, "queue_depth": 0, '
printf '"uptime_s": 1}\\n'
"""

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Agent:
    """Where the agent's scripts live (on every box: this machine)."""

    reload: Path
    health: Path

    @classmethod
    def install(cls, root: Path) -> Agent:
        root.mkdir(parents=True, exist_ok=True)
        (root / "reload.sh").write_text(RELOAD_SH)
        (root / "health.sh").write_text(HEALTH_SH)
        return cls(root / "reload.sh", root / "health.sh")


class Fleet:
    """N OpenSshBox on loopback sharing one client key and one known_hosts file."""

    def __init__(self, root: Path, n: int) -> None:
        self.root = root
        self.n = n
        self.boxes: list[OpenSshBox] = []
        self.client_key = root / "client_ed25519"
        self.known_hosts = root / "known_hosts"
        self.agent = Agent.install(root / "agent")

    def start(self, tools: tuple[str, ...]) -> Fleet:
        if (why := OpenSshBox.why_unavailable()) is not None:
            raise SystemExit(f"bench_vs_peers: {why}")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.client_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-client",
                 "-f", str(self.client_key)], check=True, capture_output=True,
            )  # fmt: skip
        for i in range(self.n):
            wd = self.root / "boxes" / f"b{i:04d}"
            wd.mkdir(parents=True, exist_ok=True)
            for suffix in ("", ".pub"):
                shutil.copy(f"{self.client_key}{suffix}", wd / f"client_ed25519{suffix}")
            (wd / "client_ed25519").chmod(0o600)
            self.boxes.append(OpenSshBox(wd, max_startups=max(200, 2 * self.n)))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda b: b.start(), self.boxes))
        self.known_hosts.write_text("".join(b.known_hosts.read_text() for b in self.boxes))
        for box in self.boxes:
            for tool in tools:
                self.config_path(box, tool).parent.mkdir(parents=True, exist_ok=True)
        return self

    def stop(self) -> None:
        for box in self.boxes:
            with contextlib.suppress(Exception):
                box.stop()

    @staticmethod
    def config_path(box: OpenSshBox, tool: str) -> Path:
        return box.root / "etc" / tool / "config.yaml"

    def pids(self) -> list[int]:
        """The sshd listeners' pids (the process each box's Popen runs: unshare execs sshd)."""
        return [b._proc.pid for b in self.boxes if b._proc is not None]

    def verified(self, tool: str, sha: str) -> int:
        """Boxes whose file holds `sha` and whose agent reports it loaded."""
        ok = 0
        for box in self.boxes:
            path = self.config_path(box, tool)
            with contextlib.suppress(OSError):
                file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
                loaded = Path(f"{path}.loaded").read_text().strip()
                ok += file_sha == sha == loaded
        return ok


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds of the process and its reaped children) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / TICKS


def children_of(pids: set[int]) -> list[int]:
    """Live processes whose parent is one of `pids`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[0] in pids:
            out.append(int(entry))
    return out


def server_cpu(pids: list[int], settle_s: float = 10.0) -> float:
    """CPU seconds the sshd listeners and every session they reaped have used so far.

    Waits (up to settle_s) until no listener has a child left, so the sessions of
    the run just ended are reaped and counted in the listener's cutime/cstime.
    """
    deadline = time.monotonic() + settle_s
    while children_of(set(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sum(st[1] for p in pids if (st := _stat(p)) is not None)


def ssh_masters(marker: str) -> list[int]:
    """Live ssh processes whose command line holds `marker` (Ansible's ControlPersist masters).

    A master renames itself "ssh: CONTROL_PATH [mux]", so argv[0] starts with "ssh".
    """
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if argv and argv[0].startswith(b"ssh") and marker.encode() in b" ".join(argv):
                out.append(int(entry))
    return out


def cpu_of(pids: list[int]) -> float:
    return sum(st[1] for p in pids if (st := _stat(p)) is not None)
