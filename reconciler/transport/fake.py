"""FakeBox: a box in memory, for tests and benches (in the spirit of httpx's MockTransport).

This is a test double that lives in the product tree on purpose: the driver's unit
tests (tests/engine/) and the benches build fleets of these, in process, with no
network and no SSH server. It implements the whole `BoxTransport` Protocol and
imports neither asyncssh nor httpx.

A `FakeBox` holds:

- `files`: an in-memory filesystem, `PurePosixPath -> FakeFile(data, mode, mtime)`,
  and `dirs`, the directories that exist (write_atomic and mkdir make missing parents,
  as the SSH transport does; link and rename do not);
- `handler(box, argv) -> CommandResult`: what `run(argv)` does. The default,
  `agent_commands`, "loads" the config file on a reload or restart (`loaded_sha`
  becomes its sha256) and prints the health JSON for a health command;
- `health(box) -> Health`: what the agent answers (`fetch_health`, and the default
  health command). The default, `report_state`, reports the box's fields
  (`alive`, `heartbeat_age_s`, `loaded_sha`, `tasks_processed`, `queue_depth`, `uptime_s`);
- `fault(op, target) -> Exception | None`: consulted before every operation. `op` is
  the method name (`read_file`, `write_atomic`, `run`, `mkdir`, `remove`, `rmdir`,
  `rmtree`, `listdir`, `rename`, `stat`, `link`, `realpath`, `close`, and `health` for
  `fetch_health`); `target` is the path it reads or changes (for `rename` and `link`,
  the destination), the argv as a tuple for `run`, `(url,)` for `health` and `()` for
  `close`. An exception returned is raised; a `Hang` returned makes the operation wait
  until it is cancelled (then it is listed in `cancelled`). Helpers below build common
  faults: `fail_nth`, `fail_on`, `hang_on`, and `chain` to combine them.

Every operation is one round trip: it is counted in `counts[op]` (also when a fault
fails it), logged in `log` as `(op, target)`, and yields to the event loop once (or
sleeps `latency` seconds), so concurrent box operations interleave as they would on
a network. Counts are transport calls; over SSH one call may be a few SFTP requests.

`rounds` counts latency rather than work: how many round trips long the longest chain
of operations was, each begun after the one before it ended. An operation is placed
one round after the latest round any finished operation ended in when it began;
operations in flight together (asyncio.gather) share a round. Sequential operations
count one round each, so `rounds == round_trips` for code that never overlaps.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

from reconciler.model.box import Health
from reconciler.transport.base import (
    BoxTransport,
    CommandResult,
    FileStat,
    RemoteError,
    TransportError,
)

OpTarget = PurePosixPath | tuple[str, ...]
Fault = Callable[[str, OpTarget], Exception | None]
Handler = Callable[["FakeBox", Sequence[str]], CommandResult]
HealthFn = Callable[["FakeBox"], Health]

# Every operation kind a FakeBox counts (the BoxTransport methods, and `health`).
OPS: Final = (
    "read_file",
    "write_atomic",
    "run",
    "mkdir",
    "remove",
    "rmdir",
    "rmtree",
    "listdir",
    "rename",
    "stat",
    "link",
    "realpath",
    "close",
    "health",
)
_S_IFREG: Final = 0o100000
_S_IFDIR: Final = 0o040000


class Hang(Exception):
    """Returned by a fault hook: the operation waits until it is cancelled."""


@dataclass(frozen=True, slots=True)
class FakeFile:
    """One file of a FakeBox: its bytes, permission bits and modification time."""

    data: bytes
    mode: int = 0o644
    mtime: float = 0.0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def report_state(box: FakeBox) -> Health:
    """The default health: the box's own fields, as they are now."""
    return Health(
        alive=box.alive,
        heartbeat_age_s=box.heartbeat_age_s,
        loaded_sha256=box.loaded_sha,
        tasks_processed=box.tasks_processed,
        queue_depth=box.queue_depth,
        uptime_s=box.uptime_s,
    )


def agent_commands(box: FakeBox, argv: Sequence[str]) -> CommandResult:
    """The default handler: `... reload` / `... restart` load the config, `... health` prints.

    A reload or restart of a box whose config file is missing exits 1; a restart
    also starts the uptime again. Any other command exits 127.
    """
    verb = argv[-1] if argv else ""
    if verb in ("reload", "restart"):
        data = box.read(box.config_path)
        if data is None:
            return CommandResult(1, "", f"{box.config_path}: no such file")
        box.loaded_sha = _sha(data)
        if verb == "restart":
            box.uptime_s = 0.0
        return CommandResult(0, "", "")
    if verb == "health":
        return CommandResult(0, box.health(box).model_dump_json(), "")
    return CommandResult(127, "", f"{argv[0] if argv else ''}: command not found")


class FakeBox:
    """One box in memory; see the module docstring.

    Args:
        name: the box's name in messages (the agent name).
        config_path: the agent's config file (what a reload loads).
        files: initial files, path -> bytes (mode 0644); their parents exist.
        handler: what `run(argv)` does (default `agent_commands`).
        health: what the agent answers (default `report_state`).
        fault: consulted before every operation (default: none).
        loaded_sha: what the agent runs at first (default: the initial config's sha).
        latency: seconds each operation takes (0: it yields to the event loop once).
        now: the wall clock for mtimes (tests pass a FakeClock's time).
    """

    def __init__(
        self,
        name: str,
        *,
        config_path: str | PurePosixPath = "/srv/agent/config.json",
        files: Mapping[str | PurePosixPath, bytes] | None = None,
        handler: Handler = agent_commands,
        health: HealthFn = report_state,
        fault: Fault | None = None,
        loaded_sha: str | None = None,
        latency: float = 0.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self.config_path = PurePosixPath(config_path)
        self.handler = handler
        self.health = health
        self.fault = fault
        self.latency = latency
        self.now = now
        self.files: dict[PurePosixPath, FakeFile] = {}
        self.dirs: dict[PurePosixPath, float] = {PurePosixPath("/"): now()}  # path -> mtime
        # Symbolic links, path -> target (absolute, or relative to the link's directory):
        # only `realpath` follows them (tests of the engine's check before a first write).
        self.symlinks: dict[PurePosixPath, PurePosixPath] = {}
        for path, data in (files or {}).items():
            self.put(PurePosixPath(path), data)
        current = self.read(self.config_path)
        self.loaded_sha = loaded_sha or (_sha(current) if current is not None else None)
        self.alive = True
        self.heartbeat_age_s = 0.5
        self.tasks_processed = 0
        self.queue_depth = 0
        self.uptime_s = 3600.0
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, OpTarget]] = []
        self.rounds = 0  # the longest chain of operations one after another (docstring)
        self._settled = 0  # the latest round a finished operation ended in
        self.cancelled: list[tuple[str, OpTarget]] = []  # hung operations, once cancelled
        self.closed = 0

    # -- the test's side: no round trip, no fault ---------------------------------------

    def read(self, path: str | PurePosixPath) -> bytes | None:
        """A file's bytes as they are, or None."""
        f = self.files.get(PurePosixPath(path))
        return f.data if f is not None else None

    def put(self, path: str | PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        """Make a file (and its parent directories)."""
        p = PurePosixPath(path)
        self._makedirs(p.parent)
        self.files[p] = FakeFile(data, mode, self.now())

    def reset_counts(self) -> None:
        """Forget the round trips (and rounds) counted and logged so far."""
        self.counts.clear()
        self.log.clear()
        self.rounds = self._settled = 0

    @property
    def round_trips(self) -> int:
        """Every operation counted since the last `reset_counts`."""
        return sum(self.counts.values())

    async def fetch_health(self, url: str) -> Health:
        """The agent's health answer (a `FetchHealth` for a `BoxHandle`): one round trip."""
        await self._trip("health", (url,))
        return self.health(self)

    # -- BoxTransport -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    async def read_file(self, path: PurePosixPath) -> bytes | None:
        p = PurePosixPath(path)
        await self._trip("read_file", p)
        if p in self.dirs:
            raise RemoteError(self.name, "read_file", f"{p}: is a directory")
        return self.read(p)

    async def write_atomic(self, path: PurePosixPath, data: bytes, *, mode: int = 0o644) -> None:
        p = PurePosixPath(path)
        await self._trip("write_atomic", p)
        if p in self.dirs:
            raise RemoteError(self.name, "write_atomic", f"{p}: is a directory")
        self.put(p, bytes(data), mode)

    async def run(
        self, argv: Sequence[str], *, timeout: float, read_only: bool = False
    ) -> CommandResult:
        await self._trip("run", tuple(argv))
        return self.handler(self, list(argv))

    async def mkdir(self, path: PurePosixPath) -> bool:
        p = PurePosixPath(path)
        await self._trip("mkdir", p)
        if p in self.dirs or p in self.files:
            return False
        self._makedirs(p)
        return True

    async def remove(self, path: PurePosixPath) -> None:
        p = PurePosixPath(path)
        await self._trip("remove", p)
        if p in self.dirs:
            raise RemoteError(self.name, "remove", f"{p}: is a directory")
        if self.files.pop(p, None) is not None:
            self._touch(p.parent)

    async def rmdir(self, path: PurePosixPath) -> None:
        p = PurePosixPath(path)
        await self._trip("rmdir", p)
        if p in self.dirs:
            if self._children(p):
                raise RemoteError(self.name, "rmdir", f"{p}: directory not empty")
            del self.dirs[p]

    async def rmtree(self, path: PurePosixPath) -> None:
        p = PurePosixPath(path)
        await self._trip("rmtree", p)
        for f in [f for f in self.files if p in f.parents]:
            del self.files[f]
        for d in [d for d in self.dirs if d == p or p in d.parents]:
            del self.dirs[d]

    async def listdir(self, path: PurePosixPath) -> list[str]:
        p = PurePosixPath(path)
        await self._trip("listdir", p)
        return sorted(c.name for c in self._children(p))

    async def rename(self, src: PurePosixPath, dst: PurePosixPath) -> None:
        s, d = PurePosixPath(src), PurePosixPath(dst)
        await self._trip("rename", d)
        if s not in self.files or d.parent not in self.dirs or d in self.dirs:
            raise RemoteError(self.name, "rename", f"{s} -> {d}: no such file or directory")
        self.files[d] = self.files.pop(s)

    async def stat(self, path: PurePosixPath) -> FileStat | None:
        p = PurePosixPath(path)
        await self._trip("stat", p)
        if p in self.dirs:
            return FileStat(0, self.dirs[p], _S_IFDIR | 0o755)
        f = self.files.get(p)
        return FileStat(len(f.data), f.mtime, _S_IFREG | f.mode) if f is not None else None

    async def link(self, src: PurePosixPath, dst: PurePosixPath) -> None:
        s, d = PurePosixPath(src), PurePosixPath(dst)
        await self._trip("link", d)
        f = self.files.get(s)
        if f is None or d.parent not in self.dirs or d in self.files or d in self.dirs:
            raise RemoteError(self.name, "link", f"{s} -> {d}: cannot link")
        self.files[d] = f  # bytes are immutable: a copy behaves as a hard link here

    async def realpath(self, path: PurePosixPath) -> PurePosixPath:
        p = PurePosixPath(path)
        await self._trip("realpath", p)
        return self._resolve(p)

    async def close(self) -> None:
        await self._trip("close", ())
        self.closed += 1

    # -- inside -------------------------------------------------------------------------

    async def _trip(self, op: str, target: OpTarget) -> None:
        """One round trip: count, log, let others run, then the fault hook has its say."""
        self.counts[op] += 1
        self.log.append((op, target))
        ends = self._settled + 1  # the round this operation ends in
        self.rounds = max(self.rounds, ends)
        try:
            await asyncio.sleep(self.latency)
            problem = self.fault(op, target) if self.fault is not None else None
            if isinstance(problem, Hang):
                try:
                    await asyncio.Event().wait()  # until cancelled
                except asyncio.CancelledError:
                    self.cancelled.append((op, target))
                    raise
            if problem is not None:
                raise problem
        finally:
            self._settled = max(self._settled, ends)

    def _resolve(self, path: PurePosixPath) -> PurePosixPath:
        """`path` with `self.symlinks` followed and dots removed, as realpath(3) does."""
        todo = list(reversed(path.parts[1:]))
        out = PurePosixPath("/")
        hops = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                out = out.parent
                continue
            nxt = out / part
            target = self.symlinks.get(nxt)
            if target is None:
                out = nxt
                continue
            hops += 1
            if hops > 40:
                raise RemoteError(self.name, "realpath", f"{path}: too many symbolic links")
            todo.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))
            if target.is_absolute():
                out = PurePosixPath("/")
        return out

    def _makedirs(self, path: PurePosixPath) -> None:
        for d in (*reversed(path.parents), path):
            if d not in self.dirs:
                self.dirs[d] = self.now()
                self._touch(d.parent)

    def _touch(self, directory: PurePosixPath) -> None:
        if directory in self.dirs:
            self.dirs[directory] = self.now()

    def _children(self, path: PurePosixPath) -> list[PurePosixPath]:
        return [p for p in (*self.files, *self.dirs) if p.parent == path and p != path]


# -- fault helpers ----------------------------------------------------------------------


def _matches(op: str, target: OpTarget, want_op: str, path: str | PurePosixPath | None) -> bool:
    if op != want_op:
        return False
    if path is None:
        return True
    if isinstance(target, tuple):
        return str(path) in target
    return target == PurePosixPath(path)


def fail_nth(
    op: str,
    n: int,
    error: Exception | None = None,
    *,
    path: str | PurePosixPath | None = None,
    box: str = "fake",
) -> Fault:
    """The `n`th `op` (1-based; on `path` only, when given) fails with `error` (a RemoteError)."""
    seen = 0

    def fault(o: str, target: OpTarget) -> Exception | None:
        nonlocal seen
        if not _matches(o, target, op, path):
            return None
        seen += 1
        if seen != n:
            return None
        return error or RemoteError(box, op, f"injected failure of {op} #{n}")

    return fault


def fail_on(
    op: str, error: Exception | None = None, *, path: str | PurePosixPath | None = None,
    box: str = "fake",
) -> Fault:  # fmt: skip
    """Every `op` (on `path` only, when given) fails with `error` (a TransportError)."""

    def fault(o: str, target: OpTarget) -> Exception | None:
        if _matches(o, target, op, path):
            return error or TransportError(box, op, f"injected failure of {op}")
        return None

    return fault


def hang_on(op: str, *, path: str | PurePosixPath | None = None, times: int | None = None) -> Fault:
    """Every `op` (on `path` only, when given) waits until it is cancelled; only the first
    `times` such operations when `times` is given (the later ones run)."""
    left = times

    def fault(o: str, target: OpTarget) -> Exception | None:
        nonlocal left
        if not _matches(o, target, op, path) or left == 0:
            return None
        if left is not None:
            left -= 1
        return Hang()

    return fault


def chain(*faults: Fault) -> Fault:
    """Each fault is consulted in turn (every one sees every operation); the first answer wins."""

    def fault(op: str, target: OpTarget) -> Exception | None:
        answers = [f(op, target) for f in faults]
        return next((a for a in answers if a is not None), None)

    return fault


if TYPE_CHECKING:
    _CHECK: BoxTransport = FakeBox("x")  # mypy: a FakeBox is a BoxTransport


__all__ = [
    "OPS",
    "FakeBox",
    "FakeFile",
    "Fault",
    "Handler",
    "Hang",
    "HealthFn",
    "OpTarget",
    "agent_commands",
    "chain",
    "fail_nth",
    "fail_on",
    "hang_on",
    "report_state",
]
