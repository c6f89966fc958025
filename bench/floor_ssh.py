"""The SSH floor: plain asyncssh, full concurrency, the same host-key check. Prints one JSON line.

Later benchmarks (status, diff, apply over many boxes) compare against this:
the least any tool must spend to reach every box. Per box it connects
(known_hosts checked, key auth), opens SFTP and reads the state stamp and the
config file; with --write it also writes the config atomically (temp, fsync,
chmod, posix-rename), runs the reload command and reads the stamp back.

Targets come from one of:
  --targets FILE.json   [{name, host, port, user, key, known_hosts, config_path, reload?}, ...]
  --fleet DIR           a fleet repo (e.g. a demo fleet's DIR/fleet) loaded with reconciler's
                        loader; relative key/known_hosts paths resolve against DIR
  --spawn N             start N plain asyncssh SFTP servers in a child process (self-contained)

--impl pool runs the same work through reconciler's SshPool instead, for comparison.

    .venv/bin/python bench/floor_ssh.py --spawn 1000
    .venv/bin/python bench/floor_ssh.py --spawn 1000 --write
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

import asyncssh

from reconciler.config.repo import load_repo
from reconciler.model.box import BoxPaths
from reconciler.repo import read_work_tree
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget


def targets_from_fleet(root: Path) -> list[dict[str, Any]]:
    """Targets of every agent of a fleet repo."""
    repo = load_repo(read_work_tree(root))
    out = []
    for ea in repo.agents.values():
        a = ea.agent
        t = SshTarget.of(a, root)
        out.append({
            "name": a.name, "host": a.host, "port": a.port, "user": a.user,
            "key": str(t.key) if t.key else None,
            "known_hosts": str(t.known_hosts) if t.known_hosts else None,
            "config_path": a.config_path, "reload": a.commands.reload or ["true"],
        })  # fmt: skip
    return out


class Floor:
    """Plain asyncssh, one connection per box, keys and known_hosts loaded once."""

    def __init__(self, targets: list[dict[str, Any]]) -> None:
        keys = {t["key"] for t in targets if t["key"]}
        known = {t["known_hosts"] for t in targets if t["known_hosts"]}
        self.keys = {k: asyncssh.read_private_key(k) for k in keys}
        self.known = {k: asyncssh.read_known_hosts(k) for k in known}

    async def one(self, t: dict[str, Any], write: bool) -> None:
        paths = BoxPaths.of(t["config_path"])
        async with asyncssh.connect(
            t["host"], t["port"], username=t["user"], known_hosts=self.known[t["known_hosts"]],
            client_keys=[self.keys[t["key"]]], agent_path=None, config=None, connect_timeout=30,
        ) as conn, conn.start_sftp_client() as sftp:  # fmt: skip
            async with sftp.open(str(paths.stamp), "rb") as f:
                await f.read()
            async with sftp.open(str(paths.config), "rb") as f:
                config = await f.read()
            if write:
                tmp = str(paths.config.with_name(f".{paths.config.name}.floor"))
                async with sftp.open(tmp, "wb") as f:
                    await f.write(config)
                    await f.fsync()
                await sftp.chmod(tmp, 0o644)
                await sftp.posix_rename(tmp, str(paths.config))
                r = await conn.run(shlex.join(t["reload"]), check=False, timeout=30)
                if r.exit_status != 0:
                    raise RuntimeError(f"reload exited {r.exit_status}")
                async with sftp.open(str(paths.stamp), "rb") as f:
                    await f.read()


async def via_pool(pool: SshPool, t: dict[str, Any], write: bool) -> None:
    """The same work through reconciler's transport."""
    key, kh = t["key"], t["known_hosts"]
    target = SshTarget(
        t["name"], t["host"], t["port"], t["user"], Path(key) if key else None,
        Path(kh) if kh else None,
    )  # fmt: skip
    box = pool.box(target)
    paths = BoxPaths.of(t["config_path"])
    await box.read_file(paths.stamp)
    config = await box.read_file(paths.config)
    if write:
        await box.write_atomic(PurePosixPath(paths.config), config or b"", mode=0o644)
        r = await box.run(t["reload"], timeout=30)
        if r.exit_status != 0:
            raise RuntimeError(f"reload exited {r.exit_status}")
        await box.read_file(paths.stamp)


async def run(targets: list[dict[str, Any]], write: bool, impl: str, concurrency: int) -> dict:
    failures: list[str] = []
    sem = asyncio.Semaphore(concurrency)

    async def guarded(coro: Any, name: str) -> None:
        async with sem:
            try:
                await coro
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if impl == "asyncssh":
        floor = Floor(targets)
        await asyncio.gather(*(guarded(floor.one(t, write), t["name"]) for t in targets))
    else:
        opts = SshOptions(connect_timeout=30, op_timeout=60, concurrency=concurrency)
        async with SshPool(opts) as pool:
            await asyncio.gather(*(guarded(via_pool(pool, t, write), t["name"]) for t in targets))
    seconds = time.perf_counter() - t0
    return {
        "bench": "floor_ssh",
        "impl": impl,
        "mode": "write" if write else "read",
        "n": len(targets),
        "ok": len(targets) - len(failures),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--targets", type=Path)
    src.add_argument("--fleet", type=Path)
    src.add_argument("--spawn", type=int, metavar="N")
    ap.add_argument("--write", action="store_true", help="the apply floor: write, reload, read")
    ap.add_argument("--impl", choices=["asyncssh", "pool"], default="asyncssh")
    ap.add_argument("--concurrency", type=int, default=1024)
    a = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    child = None
    tmp = None
    if a.spawn:
        tmp = tempfile.TemporaryDirectory(prefix="floor-ssh-")
        child = subprocess.Popen(
            [sys.executable, "-m", "reconciler.testing.sshserver", "--n", str(a.spawn),
             "--dir", tmp.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("floor_ssh: the spawned servers did not start")
        targets = json.loads((Path(tmp.name) / "targets.json").read_text())
    elif a.fleet:
        targets = targets_from_fleet(a.fleet)
    else:
        targets = json.loads(a.targets.read_text())
    try:
        result = asyncio.run(run(targets, a.write, a.impl, a.concurrency))
    finally:
        if child is not None:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=60)
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
