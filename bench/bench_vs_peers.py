"""reconciler against pyinfra, Ansible and the raw asyncssh floor on N real OpenSSH boxes.

Issue 19, "The benchmark".

One command, from the repo root after scripts/setup:

    .venv/bin/python bench/bench_vs_peers.py --n 50 --runs 3

The boxes (bench/peers_boxes.py): one real sshd per box on 127.0.0.1, each with
its own host key and directory (reconciler/testing/openssh.py, run as root, in
a private mount namespace so root's slow shell init is not sourced), and a tiny
agent: `reload.sh CONFIG` records the sha256 of the config it loaded,
`health.sh CONFIG` prints reconciler's Health JSON with that sha. One sshd per
box rather than one sshd on N ports: per-box host keys and per-box session
processes are what a fleet has, and the sshd CPU is summed over all of them.

The same change for every tool: a ~2 KB config (the same canonical bytes, with
a new marker each run, so every run really writes) pushed to every box, the
agent reloaded, its state read back. Each tool writes its own config path on
each box (BOX/etc/TOOL/config.yaml), so no tool sees another's write as drift.

(a) reconcile: `reconcile apply --yes` on a generated fleet repo of N agents.
    This bench DROPS GATES AND SOAK: fleet.yaml has no gates, one wave of 100%,
    soak_s 0 (there is nothing to measure on the bench agent), and
    rollout.parallel = N (as the floor and Ansible's forks = N). Everything else
    apply normally does runs: the live read of every box, the diff, the lease,
    the atomic write with history, the reload, verification through the health
    command, the stamp and the journal. Each run commits a new _base.yaml first
    (outside the timing).
(b) pyinfra (default parallelism: min(20 x CPUs, N) hosts at once): files.put
    (pyinfra writes the destination in place over SFTP; that is its default),
    server.shell reload, server.shell `cat` of the loaded sha; `pyinfra -y`.
(c) floor: plain asyncssh, every box at once: connect, SFTP write a temp file,
    fsync, chmod, posix-rename, run the reload, read the loaded sha back over SFTP.
(d) ansible-playbook (forks = N, pipelining on, ControlPersist, no facts): copy,
    command reload, command cat. Once per N (it is slow), after the other runs.

Runs are interleaved (a b c a b c ...) after one untimed warm-up round of
(a)(b)(c) (it brings the boxes under management and warms caches). Each tool runs
as a child process; its wall time includes its start-up. Client CPU and peak RSS
come from the child's rusage (wait4: the child and every descendant it reaped;
peak RSS is the largest single process). For Ansible the CPU of its detached
ControlPersist ssh masters is added (read from /proc before they are stopped).
Server CPU is the CPU of the N sshd listeners and every session process they
reaped (utime+stime+cutime+cstime from /proc), after minus before. "verified"
counts boxes whose file holds the expected sha and whose agent reports it loaded.

pyinfra and Ansible are the benchmark-only extra `bench` of pyproject.toml. They
run from their own venv (default ~/.cache/reconciler-bench/peers-venv, created
and filled from that extra on first use), never from .venv: ansible-core and
pyinfra pin jinja2, cryptography, paramiko, gevent..., which must not change the
versions reconciler is tested with. They are only ever run as commands.

Options: --n 50 200 (default both), --runs 5, --skip-ansible, --quick (N=10,
2 runs: a smoke run), --peers-venv DIR. Every process it starts it stops, also
on Ctrl-C or SIGTERM. Targets (issue 19): reconcile wall <= 2x the floor's,
>= 1.2x faster than pyinfra, client CPU <= 2x the floor's, >= 15x faster than
Ansible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peers_boxes import Fleet, cpu_of, server_cpu, ssh_masters

from reconciler.render.canonical import render_payload, sha256_hex

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parent / "pyproject.toml"
RECONCILE = Path(sys.executable).parent / "reconcile"
DEFAULT_PEERS_VENV = Path(
    os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "reconciler-bench", "peers-venv"
)
TOOLS = ("reconcile", "pyinfra", "floor", "ansible")
PROMPT = (
    "You are a customer-support agent for Acme. Answer from the knowledge base and cite the "
    "article you used; when the knowledge base has no answer, say so plainly and open a ticket "
    "for a human with a one-line summary of the question. Never promise refunds, delivery dates "
    "or features. Keep answers under two hundred words unless the customer asks for detail. "
) * 4

_children: list[subprocess.Popen[bytes]] = []


def payload(marker: str) -> dict[str, Any]:
    """The agent config every tool pushes (~2 KB rendered), with a marker new each run."""
    return {
        "model": "claude-haiku-4-5", "prompt": PROMPT, "max_tokens": 1024, "temperature": 0.2,
        "concurrency": 4, "token_budget": {"daily": 2000000, "alert_at": 0.8},
        "tags": ["support", "bench"], "tools": ["kb_lookup", "ticket_update"],
        "kb": {"url": "https://kb.acme.internal/api", "timeout_s": 5}, "log_level": "info",
        "retry": {"max_attempts": 3, "backoff_s": 2}, "debug": {"trace_sampling": 0.01},
        "change": marker,
    }  # fmt: skip


# ---- running a child and measuring it -------------------------------------------------------


@dataclass
class Sample:
    tool: str
    n: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    peak_rss_mb: float
    verified: int
    exit: int
    error: str = ""
    phases: dict[str, float] = field(default_factory=dict)


def run_child(
    argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> tuple[float, int, float, float, list[tuple[float, str]]]:
    """Run argv to its end in its own session.

    (wall s, exit code, CPU s, peak RSS MB, the JSON event lines of its stdout with the
    second each arrived); all its output also goes to `log`.
    """
    events: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )  # fmt: skip
        _children.append(proc)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if line.startswith(b'{"event"'):
                    events.append((time.perf_counter() - t0, json.loads(line)["event"]))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C, SIGTERM: stop the tool before anything else
            stop_children()
            raise
        _children.remove(proc)
        wall = time.perf_counter() - t0
        reader.join(timeout=10)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, events


def phases(events: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """reconcile's wall split by its event lines: before the wave, the wave, after it."""
    first = {e: t for t, e in reversed(events)}
    last = {e: t for t, e in events}
    start, applied = first.get("wave.started"), last.get("box.applied")
    if start is None or applied is None:
        return {}
    return {"before_wave_s": start, "wave_s": applied - start, "after_wave_s": wall - applied}


def stop_children() -> None:
    """Stop every tool child still running (its whole session), SIGTERM then SIGKILL."""
    for proc in list(_children):
        _children.remove(proc)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue


def _stop_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)


def stop_masters(marker: str) -> None:
    """Stop Ansible's ssh masters, also one a killed ssh client detached just now."""
    for _ in range(4):
        if masters := ssh_masters(marker):
            _stop_pids(masters)
        else:
            time.sleep(0.25)


# ---- the tools ------------------------------------------------------------------------------


@dataclass
class Bench:
    """One N: the fleet, a work dir, and how each tool is run."""

    fleet: Fleet
    work: Path
    peers_bin: Path
    round: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.fleet.n

    def _local_config(self, tool: str) -> tuple[Path, str]:
        self.round += 1
        data = render_payload(payload(f"{tool} run {self.round}"))
        path = self.work / tool / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path, sha256_hex(data)

    def measure(self, tool: str) -> Sample:
        prepare: dict[str, Callable[[], tuple[list[str], Path, dict[str, str] | None, str]]] = {
            "reconcile": self._reconcile, "pyinfra": self._pyinfra, "floor": self._floor,
            "ansible": self._ansible,
        }  # fmt: skip
        argv, cwd, env, sha = prepare[tool]()
        log = self.work / tool / f"run-{self.round}.log"
        pids = self.fleet.pids()
        before = server_cpu(pids)
        wall, code, cpu, rss, events = run_child(argv, cwd, log, env)
        if tool == "ansible":
            masters = ssh_masters(str(self.work / "ansible" / "cp"))
            cpu += cpu_of(masters)
            _stop_pids(masters)
        after = server_cpu(pids)
        verified = self.fleet.verified(tool, sha)
        error = "" if code == 0 else log.read_text(errors="replace")[-800:]
        return Sample(
            tool, self.n, wall, cpu, after - before, rss, verified, code, error,
            phases(events, wall),
        )  # fmt: skip

    # (a) reconcile apply
    def setup_reconcile(self) -> None:
        repo = self.work / "reconcile" / "repo"
        (repo / "agents").mkdir(parents=True, exist_ok=True)
        (repo / "shards").mkdir(exist_ok=True)
        (repo / "schemas").mkdir(exist_ok=True)
        f = self.fleet
        (repo / "fleet.yaml").write_text(
            "fleet_id: bench\n"
            "connection:\n"
            f"  user: {f.boxes[0].user}\n  key: {f.client_key}\n  known_hosts: {f.known_hosts}\n"
            f"  connect_timeout_s: 30\n  command_timeout_s: 30\n  concurrency: {max(256, f.n)}\n"
            f"  allowed_paths: [{f.root / 'boxes'}]\n"
            "rollout:\n  waves: [100%]\n  soak_s: 0\n  failure_budget: 0\n"
            f"  verify_timeout_s: 30\n  parallel: {f.n}\n"
        )
        (repo / "agents" / "tier-bench.yaml").write_text("description: the bench agents\n")
        schema = {
            "type": "object",
            "properties": {"prompt": {"type": "string", "x-not-secret": True}},
        }
        (repo / "schemas" / "agent.schema.json").write_text(json.dumps(schema) + "\n")
        entries = []
        for i, box in enumerate(f.boxes):
            cfg = f.config_path(box, "reconcile")
            entries.append(
                f"  - name: bench-{i:04d}\n    tier: bench\n    host: 127.0.0.1\n"
                f"    port: {box.port}\n    config_path: {cfg}\n    commands:\n"
                f"      reload: [sh, {f.agent.reload}, {cfg}]\n"
                f"      health: [sh, {f.agent.health}, {cfg}]\n"
            )
        (repo / "shards" / "bench.yaml").write_text("agents:\n" + "".join(entries))
        self._base("initial")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "bench fleet")

    def _base(self, marker: str) -> str:
        repo = self.work / "reconcile" / "repo"
        p = payload(marker)
        (repo / "agents" / "_base.yaml").write_text(f"config: {json.dumps(p)}\n")
        return sha256_hex(render_payload(p))

    def _reconcile(self) -> tuple[list[str], Path, dict[str, str] | None, str]:
        self.round += 1
        repo = self.work / "reconcile" / "repo"
        sha = self._base(f"reconcile run {self.round}")
        git(repo, "commit", "-qam", f"bench run {self.round}")
        argv = [str(RECONCILE), "apply", "--repo", str(repo), "--yes", "--format", "json",
                "--state-dir", str(self.work / "reconcile" / "state")]  # fmt: skip
        return argv, self.work, None, sha

    # (b) pyinfra
    def setup_pyinfra(self) -> None:
        d = self.work / "pyinfra"
        d.mkdir(parents=True, exist_ok=True)
        f = self.fleet
        common = {
            "ssh_hostname": "127.0.0.1", "ssh_user": f.boxes[0].user,
            "ssh_key": str(f.client_key), "ssh_known_hosts_file": str(f.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }  # fmt: skip
        hosts = [
            (f"b{i:04d}", {**common, "ssh_port": b.port,
                           "config_path": str(f.config_path(b, "pyinfra"))})
            for i, b in enumerate(f.boxes)
        ]  # fmt: skip
        (d / "inventory.py").write_text(f"hosts = {hosts!r}\n")
        (d / "deploy.py").write_text(
            "from pyinfra import host\n"
            "from pyinfra.operations import files, server\n\n"
            "cfg = host.data.config_path\n"
            f"files.put(name='config', src={str(d / 'config.yaml')!r}, dest=cfg, mode='644')\n"
            f"server.shell(name='reload', commands=[f'sh {f.agent.reload} {{cfg}}'])\n"
            "server.shell(name='read back', commands=[f'cat {cfg}.loaded'])\n"
        )

    def _pyinfra(self) -> tuple[list[str], Path, dict[str, str] | None, str]:
        _path, sha = self._local_config("pyinfra")
        d = self.work / "pyinfra"
        return [str(self.peers_bin / "pyinfra"), "-y", "inventory.py", "deploy.py"], d, None, sha

    # (c) the floor
    def setup_floor(self) -> None:
        f = self.fleet
        spec = {
            "user": f.boxes[0].user, "key": str(f.client_key), "known_hosts": str(f.known_hosts),
            "local": str(self.work / "floor" / "config.yaml"),
            "targets": [
                {"port": b.port, "config": str(f.config_path(b, "floor")),
                 "reload": ["sh", str(f.agent.reload), str(f.config_path(b, "floor"))]}
                for b in f.boxes
            ],
        }  # fmt: skip
        (self.work / "floor").mkdir(parents=True, exist_ok=True)
        (self.work / "floor" / "spec.json").write_text(json.dumps(spec))

    def _floor(self) -> tuple[list[str], Path, dict[str, str] | None, str]:
        _path, sha = self._local_config("floor")
        spec = self.work / "floor" / "spec.json"
        return [sys.executable, str(Path(__file__)), "--floor-worker", str(spec)], HERE, None, sha

    # (d) Ansible
    def setup_ansible(self) -> None:
        d = self.work / "ansible"
        for sub in ("cp", "home", "local-tmp", "remote-tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        f = self.fleet
        (d / "ansible.cfg").write_text(
            "[defaults]\n"
            f"forks = {f.n}\nhost_key_checking = True\ngathering = explicit\n"
            f"local_tmp = {d / 'local-tmp'}\nremote_tmp = {d / 'remote-tmp'}\n"
            "interpreter_python = /usr/bin/python3\nretry_files_enabled = False\n"
            "[ssh_connection]\npipelining = True\n"
            f"ssh_args = -o ControlMaster=auto -o ControlPersist=30s "
            f"-o UserKnownHostsFile={f.known_hosts} -o IdentitiesOnly=yes\n"
            f"control_path_dir = {d / 'cp'}\n"
        )
        hosts = {
            f"b{i:04d}": {"ansible_host": "127.0.0.1", "ansible_port": b.port,
                          "config_path": str(f.config_path(b, "ansible"))}
            for i, b in enumerate(f.boxes)
        }  # fmt: skip
        inventory = {"all": {"hosts": hosts, "vars": {
            "ansible_user": f.boxes[0].user, "ansible_ssh_private_key_file": str(f.client_key),
        }}}  # fmt: skip
        (d / "inventory.json").write_text(json.dumps(inventory))
        play = [{
            "hosts": "all", "gather_facts": False,
            "tasks": [
                {"name": "config", "ansible.builtin.copy": {
                    "src": str(d / "config.yaml"), "dest": "{{ config_path }}", "mode": "0644"}},
                {"name": "reload", "ansible.builtin.command": {
                    "argv": ["sh", str(f.agent.reload), "{{ config_path }}"]}},
                {"name": "read back", "ansible.builtin.command": {
                    "argv": ["cat", "{{ config_path }}.loaded"]}, "changed_when": False},
            ],
        }]  # fmt: skip
        (d / "playbook.json").write_text(json.dumps(play))  # JSON is YAML

    def _ansible(self) -> tuple[list[str], Path, dict[str, str] | None, str]:
        _path, sha = self._local_config("ansible")
        d = self.work / "ansible"
        env = {**os.environ, "ANSIBLE_CONFIG": str(d / "ansible.cfg"),
               "ANSIBLE_HOME": str(d / "home"), "ANSIBLE_NOCOLOR": "1"}  # fmt: skip
        argv = [str(self.peers_bin / "ansible-playbook"), "-i", "inventory.json", "playbook.json"]
        return argv, d, env, sha


def git(repo: Path, *args: str) -> None:
    g = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*g, *args], cwd=repo, check=True, capture_output=True)


# ---- the floor worker (a child process, like the other tools) ------------------------------


async def _floor_main(spec: dict[str, Any]) -> int:
    import asyncssh  # noqa: PLC0415  (only the worker child needs it)

    key = asyncssh.read_private_key(spec["key"])
    known = asyncssh.read_known_hosts(spec["known_hosts"])
    data = Path(spec["local"]).read_bytes()
    want = sha256_hex(data)

    async def one(t: dict[str, Any]) -> None:
        async with asyncssh.connect(
            "127.0.0.1", t["port"], username=spec["user"], known_hosts=known, client_keys=[key],
            agent_path=None, config=None, connect_timeout=30,
        ) as conn, conn.start_sftp_client() as sftp:  # fmt: skip
            cfg = t["config"]
            tmp = f"{cfg}.floor-tmp"
            async with sftp.open(tmp, "wb") as f:
                await f.write(data)
                await f.fsync()
            await sftp.chmod(tmp, 0o644)
            await sftp.posix_rename(tmp, cfg)
            r = await conn.run(shlex.join(t["reload"]), check=False, timeout=30)
            if r.exit_status != 0:
                raise RuntimeError(f"reload exited {r.exit_status}")
            async with sftp.open(f"{cfg}.loaded", "r") as f:
                if str(await f.read()).strip() != want:
                    raise RuntimeError("the agent did not load the new config")

    results = await asyncio.gather(*(one(t) for t in spec["targets"]), return_exceptions=True)
    failed = [f"port {t['port']}: {r}" for t, r in zip(spec["targets"], results, strict=True) if r]
    for line in failed[:5]:
        print(line, file=sys.stderr)
    return 1 if failed else 0


# ---- the peers' venv ------------------------------------------------------------------------


def bench_extra() -> list[str]:
    with PYPROJECT.open("rb") as f:
        extra: list[str] = tomllib.load(f)["project"]["optional-dependencies"]["bench"]
    return extra


def ensure_peers(where: Path) -> Path:
    """The bin dir of a venv holding the bench extra (pyinfra, ansible-core); made if missing."""
    bin_dir = where / "bin"
    if all((bin_dir / tool).exists() for tool in ("pyinfra", "ansible-playbook")):
        return bin_dir
    print(f"bench_vs_peers: installing {' '.join(bench_extra())} into {where}", file=sys.stderr)
    venv.create(where, with_pip=True, clear=True)
    subprocess.run([str(bin_dir / "pip"), "install", "-q", *bench_extra()], check=True)
    return bin_dir


# ---- runs and the table ---------------------------------------------------------------------


def run_n(n: int, runs: int, skip_ansible: bool, peers_bin: Path) -> list[Sample]:
    tools = ("reconcile", "pyinfra", "floor") + (() if skip_ansible else ("ansible",))
    with tempfile.TemporaryDirectory(prefix="bvp-") as tmp:
        fleet = Fleet(Path(tmp), n)
        try:
            fleet.start(tools)
            b = Bench(fleet, Path(tmp) / "work", peers_bin)
            for tool in tools:
                getattr(b, f"setup_{tool}")()
            print(f"N={n}: {n} sshd up; warm-up round", file=sys.stderr)
            for tool in tools[:3]:
                s = b.measure(tool)
                if s.exit != 0 or s.verified != n:
                    raise SystemExit(f"bench_vs_peers: warm-up of {tool} failed:\n{s.error}")
            samples: list[Sample] = []
            for r in range(runs):
                for tool in tools[:3]:
                    samples.append(s := b.measure(tool))
                    print(f"N={n} run {r + 1}/{runs} {tool}: {s.wall_s:.2f}s "
                          f"verified {s.verified}/{n}" + (f" exit {s.exit}" if s.exit else ""),
                          file=sys.stderr)  # fmt: skip
                    if s.error:
                        print(s.error, file=sys.stderr)
            if not skip_ansible:
                samples.append(s := b.measure("ansible"))
                print(f"N={n} ansible: {s.wall_s:.2f}s verified {s.verified}/{n}", file=sys.stderr)
                if s.error:
                    print(s.error, file=sys.stderr)
            return samples
        finally:
            stop_children()
            stop_masters(str(Path(tmp) / "work" / "ansible" / "cp"))
            fleet.stop()


def _spread(xs: list[float]) -> str:
    med = statistics.median(xs)
    return f"{med:.2f}" if len(xs) == 1 else f"{med:.2f} ({min(xs):.2f}–{max(xs):.2f})"


def table(samples: list[Sample]) -> str:
    head = (
        "| tool | N | runs | wall s, median (min–max) | client CPU s | server CPU s "
        "| peak RSS MB | verified |\n|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    ratios = []
    for n in sorted({s.n for s in samples}):
        by = {t: [s for s in samples if s.n == n and s.tool == t] for t in TOOLS}
        med: dict[str, dict[str, float]] = {}
        for tool, ss in by.items():
            if not ss:
                continue
            med[tool] = {"wall": statistics.median(s.wall_s for s in ss),
                         "cpu": statistics.median(s.client_cpu_s for s in ss)}  # fmt: skip
            fails = sum(s.exit != 0 for s in ss)
            rows.append(
                f"| {tool} | {n} | {len(ss)} | {_spread([s.wall_s for s in ss])} "
                f"| {_spread([s.client_cpu_s for s in ss])} "
                f"| {_spread([s.server_cpu_s for s in ss])} "
                f"| {max(s.peak_rss_mb for s in ss):.0f} "
                f"| {min(s.verified for s in ss)}/{n}"
                + (f" ({fails} runs failed)" if fails else "") + " |"
            )  # fmt: skip
        if "reconcile" not in med:
            continue
        rc = med["reconcile"]

        def ratio(label: str, value: float, target: str, met: bool, n: int = n) -> None:
            verdict = "met" if met else "NOT met"
            ratios.append(f"| {n} | {label} | {value:.2f}x | {target} | {verdict} |")

        if "floor" in med:
            v = rc["wall"] / med["floor"]["wall"]
            ratio("reconcile wall / floor wall", v, "≤ 2x", v <= 2)
            v = rc["cpu"] / med["floor"]["cpu"]
            ratio("reconcile client CPU / floor client CPU", v, "≤ 2x", v <= 2)
        if "pyinfra" in med:
            v = med["pyinfra"]["wall"] / rc["wall"]
            ratio("pyinfra wall / reconcile wall", v, "≥ 1.2x", v >= 1.2)
        if "ansible" in med:
            v = med["ansible"]["wall"] / rc["wall"]
            ratio("ansible wall / reconcile wall", v, "≥ 15x", v >= 15)
    out = head + "\n".join(rows)
    split = []
    for n in sorted({s.n for s in samples}):
        ph = [s.phases for s in samples if s.n == n and s.tool == "reconcile" and s.phases]
        if ph:
            cells = " | ".join(_spread([p[k] for p in ph]) for k in ph[0])
            split.append(f"| {n} | {cells} |")
    if split:
        out += (
            "\n\n| N | reconcile: before wave.started s | wave.started → last box.applied s "
            "| last box.applied → exit s |\n|---|---|---|---|\n" + "\n".join(split)
        )
    if ratios:
        out += (
            "\n\n| N | reconciler's ratio (medians) | value | target | |\n|---|---|---|---|---|\n"
            + "\n".join(ratios)
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50, 200], help="box counts")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of (a)(b)(c) per N")
    ap.add_argument("--skip-ansible", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: N=10, 2 runs")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    ap.add_argument("--json", type=Path, help="also write every sample here")
    ap.add_argument("--floor-worker", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if a.floor_worker:
        sys.exit(asyncio.run(_floor_main(json.loads(a.floor_worker.read_text()))))
    sizes, runs = ([10], 2) if a.quick else (a.n, a.runs)

    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    peers_bin = ensure_peers(a.peers_venv.absolute())
    samples: list[Sample] = []
    try:
        for n in sizes:
            samples += run_n(n, runs, a.skip_ansible, peers_bin)
    except KeyboardInterrupt:
        print("bench_vs_peers: interrupted; every box and tool stopped", file=sys.stderr)
        sys.exit(130)
    if a.json:
        a.json.write_text(json.dumps([vars(s) for s in samples], indent=1))
    print(table(samples))


if __name__ == "__main__":
    main()
