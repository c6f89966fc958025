"""Running a demo fleet in the background: worker processes, the state file, `down`.

`up` prepares DIR (ports bound in this process), spreads the boxes over a few
worker processes that inherit the listening sockets, waits until each worker
reports ready, and records agents, ports and pids in DIR/demo.json (and the
pids in DIR/demo.pid). `down` stops exactly those processes (checking that
each pid still is one of this fleet's workers) and verifies the ports closed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reconciler.demo.build import Prepared, prepare, write_state
from reconciler.demo.fleetrepo import DemoSetupError
from reconciler.demo.http import ensure_token
from reconciler.demo.layout import DemoDir

BOXES_PER_WORKER: Final = 250
WORKER_MODULE: Final = "reconciler.demo.worker"
_children: dict[int, subprocess.Popen[bytes]] = {}  # workers started by this process


class AlreadyRunning(DemoSetupError):
    """DIR already has a running demo fleet."""


@dataclass(frozen=True, slots=True)
class FleetInfo:
    """A running (or recorded) demo fleet, as DIR/demo.json describes it."""

    dir: DemoDir
    doc: dict[str, Any]

    @property
    def agents(self) -> dict[str, dict[str, Any]]:
        agents: dict[str, dict[str, Any]] = self.doc.get("agents", {})
        return agents

    @property
    def pids(self) -> list[int]:
        return [w["pid"] for w in self.doc.get("workers", []) if isinstance(w.get("pid"), int)]

    def agent(self, name: str) -> dict[str, Any]:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)[:5])
            raise DemoSetupError(
                f"no agent {name!r} in the demo fleet at {self.dir.root} (e.g. {known}); "
                f"see {self.dir.state}"
            ) from None


def read_info(root: Path) -> FleetInfo | None:
    """The recorded fleet in DIR, or None when DIR holds none."""
    d = DemoDir(root.resolve())
    try:
        doc = json.loads(d.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return FleetInfo(d, doc) if isinstance(doc, dict) else None


def default_workers(agents: int) -> int:
    """A few workers: one per BOXES_PER_WORKER boxes, at most one per core."""
    return max(1, min(os.cpu_count() or 2, math.ceil(agents / BOXES_PER_WORKER)))


def _is_worker(pid: int, d: DemoDir) -> bool:
    """Whether `pid` is a live (not zombie) worker of the fleet in `d`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    ours = WORKER_MODULE.encode() in cmdline and any(
        arg.startswith(os.fsencode(d.run)) for arg in cmdline
    )
    return ours and state != "Z"


def _start_time(pid: int) -> int | None:
    """The start time of a live (not zombie) `pid` in clock ticks since boot; None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _still_there(pid: int, started: int | None) -> bool:
    """Whether the process that had start time `started` still runs as `pid`.

    An exiting process reads an empty cmdline before it is gone, so a worker once
    recognised is followed by its start time (which a reused pid would not share).
    """
    return started is not None and _start_time(pid) == started


def running_pids(root: Path) -> list[int]:
    """The pids of DIR's demo workers that are alive."""
    info = read_info(root)
    return [] if info is None else [p for p in info.pids if _is_worker(p, info.dir)]


def _spawn(p: Prepared, index: int, names: list[str], tick_s: float) -> subprocess.Popen[bytes]:
    d = p.dir
    d.run.mkdir(exist_ok=True)
    d.logs.mkdir(exist_ok=True)
    boxes, fds = [], []
    specs = {s.name: s for s in p.specs}
    for name in names:
        ssh, http = p.sockets[name]
        fds += [ssh.fileno(), http.fileno()]
        boxes.append(
            {"spec": specs[name].to_json(), "ssh_fd": ssh.fileno(), "http_fd": http.fileno()}
        )
    spec_file = d.run / f"worker-{index}.json"
    ready = d.run / f"worker-{index}.ready"
    spec = {"index": index, "tick_s": tick_s, "ready": str(ready), "boxes": boxes}
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    with (d.logs / f"worker-{index}.log").open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(spec_file)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            pass_fds=fds,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc


def _log_tail(d: DemoDir, index: int) -> str:
    try:
        lines = (d.logs / f"worker-{index}.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-8:])


@dataclass
class UpResult:
    """What `up` started."""

    info: FleetInfo
    seconds: float
    workers: list[int] = field(default_factory=list)


def up(
    root: Path,
    agents: int,
    *,
    workers: int | None = None,
    rate: float = 2.0,
    base_error_rate: float = 0.01,
    seed: int = 0,
    tick_s: float = 1.0,
    timeout_s: float = 120.0,
) -> UpResult:
    """Set up DIR and start its boxes in worker processes; AlreadyRunning if they run."""
    started = time.monotonic()
    live = running_pids(root)
    if live:
        raise AlreadyRunning(
            f"a demo fleet already runs in {root} (worker pids {', '.join(map(str, live))}); "
            f"use it, or stop it with `reconcile demo down --dir {root}`"
        )
    p = prepare(root, agents, rate=rate, base_error_rate=base_error_rate, seed=seed)
    ensure_token(p.dir.root)  # DIR/control.token (0600): every worker's boxes read this one
    n = min(workers or default_workers(agents), agents)
    names = [s.name for s in p.specs]
    shares = [names[i::n] for i in range(n)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, share in enumerate(shares):
            procs.append(_spawn(p, i, share, tick_s))
    except BaseException:
        _stop_pids([q.pid for q in procs], p.dir)
        p.close_sockets()
        raise
    p.close_sockets()  # the workers hold them now
    try:
        _wait_ready(p.dir, procs, timeout_s)
    except BaseException:
        _stop_pids([q.pid for q in procs], p.dir)
        raise
    records = [
        {"pid": q.pid, "log": str(p.dir.logs / f"worker-{i}.log"), "agents": shares[i]}
        for i, q in enumerate(procs)
    ]
    write_state(p, records)
    p.dir.pidfile.write_text("".join(f"{q.pid}\n" for q in procs), encoding="utf-8")
    info = read_info(p.dir.root)
    if info is None:
        raise DemoSetupError(f"{p.dir.state} vanished while the fleet started")
    return UpResult(info, time.monotonic() - started, [q.pid for q in procs])


def _wait_ready(d: DemoDir, procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = dict(enumerate(procs))
    while pending:
        for i, proc in list(pending.items()):
            if (d.run / f"worker-{i}.ready").exists():
                del pending[i]
            elif proc.poll() is not None:
                raise DemoSetupError(
                    f"demo worker {i} (pid {proc.pid}) exited with {proc.returncode} while "
                    f"starting; its log ({d.logs / f'worker-{i}.log'}) ends:\n{_log_tail(d, i)}"
                )
        if pending and time.monotonic() > deadline:
            raise DemoSetupError(
                f"demo workers {sorted(pending)} not ready after {timeout_s:g}s; see {d.logs}"
            )
        if pending:
            time.sleep(0.05)


def _reap(pid: int) -> None:
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stop_pids(pids: list[int], d: DemoDir, timeout_s: float = 10.0) -> list[int]:
    """SIGTERM the fleet's live workers, SIGKILL any left after `timeout_s`; the killed ones.

    Returns only once every one of them has exited (and, where it is our child, been reaped).
    """
    mine = {pid: _start_time(pid) for pid in pids if _is_worker(pid, d)}
    for pid in mine:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    left = list(mine)
    while left and time.monotonic() < deadline:
        for pid in left:
            _reap(pid)
        left = [pid for pid in left if _still_there(pid, mine[pid])]
        if left:
            time.sleep(0.05)
    for pid in left:
        if _still_there(pid, mine[pid]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid, started in mine.items():
        for _ in range(250):
            _reap(pid)
            if not _still_there(pid, started):
                break
            time.sleep(0.02)
    return left


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class DownResult:
    """What `down` stopped, and anything it could not."""

    stopped: list[int]
    killed: list[int]
    open_ports: list[int]


def down(root: Path, *, timeout_s: float = 10.0) -> DownResult:
    """Stop DIR's demo workers and check that every port of the fleet is closed."""
    info = read_info(root)
    if info is None:
        raise DemoSetupError(f"no demo fleet in {root} (no {DemoDir(root).state.name})")
    pids = [p for p in info.pids if _is_worker(p, info.dir)]
    killed = _stop_pids(pids, info.dir, timeout_s)
    ports = [
        port
        for a in info.agents.values()
        for port in (a.get("ssh_port"), a.get("http_port"))
        if isinstance(port, int)
    ]
    deadline = time.monotonic() + 5
    open_ports = [p for p in ports if _port_open(p)]
    while open_ports and time.monotonic() < deadline:
        time.sleep(0.1)
        open_ports = [p for p in open_ports if _port_open(p)]
    info.dir.pidfile.unlink(missing_ok=True)
    doc = dict(info.doc, workers=[], stopped=True)
    info.dir.state.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return DownResult(pids, killed, open_ports)
