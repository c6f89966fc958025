"""Per-box operations of a rollout, over the transport's `BoxTransport`: each one idempotent.

The driver runs these for the machine's `ApplyBox` and `RestoreBox` commands:

    lease -> compare stamp (CAS) -> keep the old file in history -> write -> secrets
          -> reload/restart -> verify loaded -> stamp -> release

Every step can be run again after a crash without harm: the lease is ours when
it names our rollout id, a file already holding the target bytes is not written
again, a history file is written only when missing, and a stamp that already
records the target for our rollout is accepted by the compare-and-swap. Every
failure is a `BoxOpError` naming the box, the step and what to do; transport
failures stay `TransportError`s (both name the box).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import shlex
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Final, TypeVar, overload

from reconciler.errors import BoxError
from reconciler.journal import liveness
from reconciler.model.agent import Agent
from reconciler.model.box import (
    LEASE_FILE,
    BoxPaths,
    ContractError,
    Health,
    Stamp,
    parse_health,
    parse_stamp,
)
from reconciler.plan.model import Activation
from reconciler.render.stamp import rfc3339
from reconciler.rollout.clock import Clock
from reconciler.rollout.events import ApplyStep
from reconciler.transport.base import BoxTransport, OperationTimeout, RemoteError, TransportError

T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")
W = TypeVar("W")
FetchHealth = Callable[[str], Awaitable[Health]]


class BoxOpError(BoxError):
    """A box operation failed for a reason the box gave us; names the box and the step."""

    def __init__(self, box: str, step: ApplyStep | str, message: str) -> None:
        self.box = box
        self.step = step
        self.message = message
        super().__init__(f"{box}: {step}: {message}")


class LeaseHeld(BoxOpError):
    """Another rollout holds the box's lease and it has not expired."""


class StampMoved(BoxOpError):
    """The box's stamp or file is no longer what the plan saw (compare-and-swap failed)."""


class ActivationFailed(BoxOpError):
    """reload or restart exited non-zero."""


class NotLoaded(BoxOpError):
    """The agent did not report the expected config sha within the verify timeout."""


class RestoreRefused(BoxOpError):
    """Nothing trustworthy to restore from: no history file, or its sha does not match."""


class MovedOn(BoxOpError):
    """Another (newer) rollout wrote the box since this one looked: it is left alone."""


@dataclass(frozen=True, slots=True)
class Lease:
    """What the lease directory on a box holds: who, for which rollout, until when, and
    whether its holder still lives (its identity and heartbeat, journal/liveness.py).

    `holder` is the name people read (user@host pid N); `host`, `pid`, `machine_id`,
    `boot_id` and `start_time` identify the process; `heartbeat_at` is its last renewal.
    A lease written before these fields existed reads them as unknown (host and pid then
    come from `holder`) and is judged by `expires_at` alone.
    """

    holder: str
    rollout_id: str
    expires_at: datetime
    fence: int = 0  # the holder's fencing number (absent in older leases: 0)
    heartbeat_at: datetime | None = None
    host: str = ""
    pid: int = 0
    machine_id: str | None = None
    boot_id: str | None = None
    start_time: int | None = None

    @classmethod
    def ours(
        cls, holder: str, rollout_id: str, *, now: datetime, ttl_s: float, fence: int
    ) -> Lease:
        """A lease held by this process, its heartbeat `now`."""
        me = liveness.here()
        return cls(
            holder, rollout_id, now + timedelta(seconds=ttl_s), fence, heartbeat_at=now,
            host=me.host, pid=me.pid, machine_id=me.machine_id, boot_id=me.boot_id,
            start_time=me.start_time,
        )  # fmt: skip

    def beat(self, now: datetime, ttl_s: float) -> Lease:
        """The same lease, renewed at `now`: heartbeat now, expiry now + `ttl_s`."""
        return replace(self, heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_s))

    def dead(self, now: datetime) -> str | None:
        """Why its holder is certainly dead (the lease may be broken), or None: it expired,
        its process is gone from this machine (or its pid was reused, or the machine
        rebooted), or it runs elsewhere and its heartbeat is three periods old."""
        if self.expires_at <= now:
            return f"expired at {rfc3339(self.expires_at)}"
        if liveness.holder_gone(self):
            return "its holder's process is gone from this machine"
        if not liveness.on_this_machine(self) and liveness.heartbeat_stale(self.heartbeat_at, now):
            stale = rfc3339(self.heartbeat_at) if self.heartbeat_at else "?"
            return f"its heartbeat ({stale}) is older than {liveness.STALE_AFTER_S:g}s"
        return None

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "holder": self.holder,
            "rollout_id": self.rollout_id,
            "expires_at": rfc3339(self.expires_at),
            "fence": self.fence,
        }
        if self.heartbeat_at is not None:
            doc["heartbeat_at"] = rfc3339(self.heartbeat_at)
        if self.host:
            doc.update(host=self.host, pid=self.pid, machine_id=self.machine_id,
                       boot_id=self.boot_id, start_time=self.start_time)  # fmt: skip
        return (json.dumps(doc, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Lease | None:
        """The lease, or None when the bytes are not one (a torn write: treated as expired)."""
        try:
            doc = json.loads(data)
            when = _parse_time(doc["expires_at"])
            beat = doc.get("heartbeat_at")
            holder = str(doc["holder"])
            named = _HOLDER.match(holder)
            host = _str(doc.get("host")) or (named["host"] if named else "")
            pid = _int(doc.get("pid")) or (int(named["pid"]) if named else 0)
            return cls(
                holder, str(doc["rollout_id"]), when, _int(doc.get("fence")) or 0,
                heartbeat_at=_parse_time(beat) if isinstance(beat, str) else None,
                host=host, pid=pid, machine_id=_str(doc.get("machine_id")),
                boot_id=_str(doc.get("boot_id")), start_time=_int(doc.get("start_time")),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


_HOLDER: Final = re.compile(r"^(?P<who>.*)@(?P<host>\S+) pid (?P<pid>\d+)$")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class BoxHandle:
    """One agent's box as the rollout sees it: settings, transport, paths, health source."""

    agent: Agent
    box: BoxTransport
    fetch_health: FetchHealth
    command_timeout: float = 30.0

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def paths(self) -> BoxPaths:
        return BoxPaths.of(self.agent.config_path, self.agent.secrets_path)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- where writes land -----------------------------------------------------------------

# What decides which filesystem a box path names: the SSH login (the pool's key, bar its
# host-key policy). Agents that share one see the same files, symlinks included.
Where = tuple[str, int, str, str | None, str | None]


def where(agent: Agent) -> Where:
    """The login `agent`'s box is reached by: host, port, user, key, known_hosts."""
    return (agent.host, agent.port, agent.user, agent.key, agent.known_hosts)


class RealPaths:
    """The box's realpath of a directory, asked once per login (`where`) for one run.

    Boxes that share a host ask for the realpath of an allowed path (or a shared config
    directory) once; each box's own directories are still resolved before its first
    write. Requests in flight are shared; a failed one is not kept (the next box asks
    again). One object lives as long as one run (the driver's), never longer.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[Where, PurePosixPath], asyncio.Future[PurePosixPath | None]] = {}

    async def of(self, h: BoxHandle, path: PurePosixPath) -> PurePosixPath:
        """`path` resolved on `h`'s box (RemoteError: a missing parent, a link loop)."""
        key = (where(h.agent), path)
        while (asked := self._known.get(key)) is not None:
            got = await asyncio.shield(asked)
            if got is not None:
                return got
            # that request failed (its asker has the error): ask again
        asked = self._known[key] = asyncio.get_running_loop().create_future()
        real: PurePosixPath | None = None
        try:
            real = await h.box.realpath(path)
            return real
        finally:
            if real is None:
                del self._known[key]
            asked.set_result(real)


@overload
async def together(a: Awaitable[T], b: Awaitable[U], /) -> tuple[T, U]: ...
@overload
async def together(a: Awaitable[T], b: Awaitable[U], c: Awaitable[V], /) -> tuple[T, U, V]: ...
@overload
async def together(
    a: Awaitable[T], b: Awaitable[U], c: Awaitable[V], d: Awaitable[W], /
) -> tuple[T, U, V, W]: ...
@overload
async def together(*steps: Awaitable[T]) -> tuple[T, ...]: ...
async def together(*steps: Awaitable[Any]) -> tuple[Any, ...]:
    """Run independent box requests at once (one SFTP channel carries many in flight);
    their results in order. The first failure cancels the others, waits for them to end,
    and is raised as it was (the first failed, in argument order)."""
    if not steps:
        return ()
    tasks = [asyncio.ensure_future(s) for s in steps]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:
        if not t.cancelled() and (exc := t.exception()) is not None:
            raise exc
    return tuple(t.result() for t in tasks)


# -- lease ------------------------------------------------------------------------------


async def take_lease(
    h: BoxHandle, *, holder: str, rollout_id: str, ttl_s: float, now: datetime, fence: int = 0
) -> Lease:
    """Take the box's lease (an atomic mkdir); ours already, or dead and broken, is fine.
    The lease written (its heartbeat `now`) is returned.

    A lease directory without its file is a take in progress (another run between its
    mkdir and its write) or one cut short by a kill: wait until it gets its file, or is
    older than a take can last (`TORN_FRESH_S`), then break it. The lease of another run
    is broken at once when its holder is dead (`Lease.dead`: expired, its process gone
    from this machine, or its heartbeat three periods old); a live one is waited for as
    long (its box operation usually ends within seconds), then refused (LeaseHeld). A
    lease naming a higher fencing number than ours is never broken (MovedOn).
    """
    lease_dir = h.paths.lease_dir
    lease = Lease.ours(holder, rollout_id, now=now, ttl_s=ttl_s, fence=fence)
    waited = 0.0
    busy: Lease | None = None
    for _ in range(int(TORN_FRESH_S / _TORN_POLL_S) + 3):
        if await h.box.mkdir(lease_dir):
            await h.box.write_atomic(lease_dir / LEASE_FILE, lease.to_bytes(), mode=0o600)
            return lease
        data = await h.box.read_file(lease_dir / LEASE_FILE)
        held = Lease.parse(data) if data is not None else None
        if held is not None and held.rollout_id == rollout_id:
            await h.box.write_atomic(lease_dir / LEASE_FILE, lease.to_bytes(), mode=0o600)
            return lease
        later = now + timedelta(seconds=waited)
        if held is not None and held.dead(later) is None:
            # Another run is on this box (a second machine, say): its box operation ends
            # within seconds, so wait a little before calling the box failed.
            busy = held
            await asyncio.sleep(_TORN_POLL_S)
            waited += _TORN_POLL_S
            continue
        if held is not None and held.fence > fence:
            raise MovedOn(
                h.name, ApplyStep.LEASE, f"{lease_dir} was taken by a newer rollout "
                f"({held.rollout_id}, fence {held.fence} > ours {fence}); left alone",
            )  # fmt: skip
        if held is None and data is None and await _fresh_dir(h, lease_dir, later):
            await asyncio.sleep(_TORN_POLL_S)  # a take in progress, or a torn one ageing
            waited += _TORN_POLL_S
            continue
        await h.box.rmtree(lease_dir)  # expired (or torn): break it, then take it
    if busy is not None:
        raise LeaseHeld(
            h.name,
            ApplyStep.LEASE,
            f"{lease_dir} is held by {busy.holder} for rollout {busy.rollout_id} until "
            f"{rfc3339(busy.expires_at)}{_beat_of(busy)} (waited {waited:g}s); wait for it, "
            "or remove that directory if the holder is certainly gone",
        )
    raise LeaseHeld(h.name, ApplyStep.LEASE, f"{lease_dir} was retaken while we broke it")


def _beat_of(lease: Lease) -> str:
    return f", heartbeat {rfc3339(lease.heartbeat_at)}" if lease.heartbeat_at else ""


async def renew_lease(h: BoxHandle, lease: Lease, *, now: datetime, ttl_s: float) -> Lease | None:
    """Beat: rewrite our lease with heartbeat `now` (and expiry now + `ttl_s`), when the
    box still holds it (our rollout); None when it does not (released, or broken by a run
    that took us for dead): then nothing is written."""
    path = h.paths.lease_dir / LEASE_FILE
    data = await h.box.read_file(path)
    held = Lease.parse(data) if data is not None else None
    if held is None or held.rollout_id != lease.rollout_id or held.fence != lease.fence:
        return None
    renewed = lease.beat(now, ttl_s)
    await h.box.write_atomic(path, renewed.to_bytes(), mode=0o600)
    return renewed


TORN_FRESH_S: Final = 10.0  # how long a lease take (mkdir, then its file) may take
_TORN_POLL_S: Final = 0.5


async def _fresh_dir(h: BoxHandle, path: PurePosixPath, now: datetime) -> bool:
    st = await h.box.stat(path)
    return st is not None and now.timestamp() - st.mtime < TORN_FRESH_S


async def break_torn(h: BoxHandle, now: datetime) -> bool:
    """Remove the lease dir when it still has no lease file and is older than a take
    lasts (a take or a release cut short); True when removed."""
    lease_dir = h.paths.lease_dir
    if await h.box.read_file(lease_dir / LEASE_FILE) is not None:
        return False
    if await h.box.stat(lease_dir) is None or await _fresh_dir(h, lease_dir, now):
        return False
    await h.box.rmtree(lease_dir)
    return True


async def release_lease(h: BoxHandle, *, rollout_id: str, taken: bool = False) -> None:
    """Remove the lease when it is ours; someone else's is left alone.

    `taken`: this very box operation took the lease moments ago (well inside its ttl, so
    nobody can have broken it): remove it without reading it back first.
    """
    if taken:
        with contextlib.suppress(RemoteError):
            await h.box.remove(h.paths.lease_dir / LEASE_FILE)
            await h.box.rmdir(h.paths.lease_dir)
            return
    data = await h.box.read_file(h.paths.lease_dir / LEASE_FILE)
    held = Lease.parse(data) if data is not None else None
    if held is not None and held.rollout_id != rollout_id:
        return
    await h.box.rmtree(h.paths.lease_dir)


# -- compare-and-swap -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoxNow:
    """The box's stamp and file sha as read just now."""

    stamp: Stamp | None
    file_sha: str | None
    file: bytes | None


async def read_stamp(h: BoxHandle) -> Stamp | None:
    """The box's stamp, read again right before a write (None when absent).

    Raises:
        StampMoved: the stamp file is not a stamp.
    """
    raw = await h.box.read_file(h.paths.stamp)
    if raw is None:
        return None
    try:
        return parse_stamp(raw)
    except ContractError as exc:
        raise StampMoved(h.name, ApplyStep.STAMP, f"{h.paths.stamp}: {exc}") from None


async def read_now(h: BoxHandle) -> BoxNow:
    """The stamp (None when absent) and the config file of the box (read at once)."""
    raw, data = await together(h.box.read_file(h.paths.stamp), h.box.read_file(h.paths.config))
    stamp = None
    if raw is not None:
        try:
            stamp = parse_stamp(raw)
        except ContractError as exc:
            raise StampMoved(h.name, ApplyStep.STAMP_CHECK, f"{h.paths.stamp}: {exc}") from None
    return BoxNow(stamp, sha256_hex(data) if data is not None else None, data)


def check_unmoved(
    h: BoxHandle,
    now: BoxNow,
    *,
    stamp_sha: str | None,
    stamp_revision: str | None,
    pre_sha: str | None,
    target_sha: str,
    rollout_id: str,
) -> bool:
    """Compare-and-swap: the box is what the plan saw. True when it is already done (ours).

    Raises:
        StampMoved: the stamp or the file changed since the plan was made.
    """
    s = now.stamp
    if s is not None and s.rollout_id == rollout_id and s.config_sha256 == target_sha:
        return now.file_sha == target_sha
    seen = (s.config_sha256 if s else None, s.revision if s else None)
    if seen != (stamp_sha, stamp_revision) or now.file_sha not in (pre_sha, target_sha):
        raise StampMoved(
            h.name,
            ApplyStep.STAMP_CHECK,
            f"the box moved since the plan: stamp {_short(seen[0])} of {_short(seen[1])} "
            f"(plan saw {_short(stamp_sha)} of {_short(stamp_revision)}), file "
            f"{_short(now.file_sha)} (plan saw {_short(pre_sha)}); make a new plan",
        )
    return False


def _short(text: str | None) -> str:
    return "none" if text is None else text[:12]


# -- files ------------------------------------------------------------------------------


async def keep_in_history(h: BoxHandle, data: bytes) -> None:
    """Put `data` in the box's history directory under its sha, unless it is there already."""
    path = h.paths.history_file(sha256_hex(data))
    if await h.box.stat(path) is None:
        await h.box.write_atomic(path, data, mode=0o644)


async def link_into_history(h: BoxHandle, sha: str, *, missing: bool = False) -> None:
    """Keep the config just written (`sha`) in history by a hard link: no second upload.
    `missing`: the caller saw (under the lease) that the history file is not there."""
    path = h.paths.history_file(sha)
    if not missing and await h.box.stat(path) is not None:
        return
    try:
        await h.box.link(h.paths.config, path)
    except RemoteError:
        if await h.box.stat(path) is not None:
            return  # linked already (a replay): the same bytes
        await h.box.mkdir(h.paths.history_dir)
        await h.box.link(h.paths.config, path)


async def prune_history(
    h: BoxHandle, keep_shas: Sequence[str], *, names: Sequence[str] | None = None
) -> None:
    """Remove history files whose sha is not among `keep_shas` (the stamp's last N), at once.
    `names`: the history directory's listing, when the caller has it."""
    keep = set(keep_shas)
    if names is None:
        names = await h.box.listdir(h.paths.history_dir)
    gone = [n for n in names if len(n) == 64 and n not in keep]
    await together(*(h.box.remove(h.paths.history_dir / n) for n in gone))


async def write_config(h: BoxHandle, data: bytes, current: bytes | None) -> bool:
    """Write the config atomically, keeping both old and new in history; False: already there.

    The old file is in history before the config is replaced (a crash in between loses
    nothing); both history files are looked for at once, first.
    """
    if current == data:
        await keep_in_history(h, data)
        return False
    new_sha = sha256_hex(data)
    new_path = h.paths.history_file(new_sha)
    if current is None:
        new_there = await h.box.stat(new_path)
    else:
        old_path = h.paths.history_file(sha256_hex(current))
        old_there, new_there = await together(h.box.stat(old_path), h.box.stat(new_path))
        if old_there is None:
            await h.box.write_atomic(old_path, current, mode=0o644)
    await h.box.write_atomic(h.paths.config, data, mode=0o644)
    if new_there is None:
        await link_into_history(h, new_sha, missing=True)
    return True


async def write_secrets(h: BoxHandle, data: bytes, *, current: bytes | bool | None = True) -> bool:
    """Write the secrets file (mode 0600) when its bytes differ; False: already there.

    `current`: the file's bytes as just read (None: absent); True (default): read them now.
    """
    if current is True:
        current = await h.box.read_file(h.paths.secrets)
    if current == data:
        return False
    await h.box.write_atomic(h.paths.secrets, data, mode=0o600)
    return True


def kept_secrets_path(h: BoxHandle, rollout_id: str, key: bytes | None = None) -> PurePosixPath:
    """Where a rollout keeps the box's previous secrets file while it runs (0600), so that
    its rollback, or a resume after a crash, can put the old values back.

    Named by HMAC-SHA256(fleet key, rollout id + agent), truncated: neither the values, a
    plain hash of anything, nor the rollout id show in the name. With no fleet key
    (None or empty: absent), named by the rollout id."""
    s = h.paths.secrets
    if not key:
        return s.with_name(f".{s.name}.before-{rollout_id}")
    msg = f"kept-secrets\0{rollout_id}\0{h.name}".encode()
    tag = hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]
    return s.with_name(f".{s.name}.before-{tag}")


async def keep_secrets(
    h: BoxHandle, rollout_id: str, data: bytes, key: bytes | None = None
) -> None:
    """Keep the previous secrets file beside the live one for the rollout's duration."""
    await h.box.write_atomic(kept_secrets_path(h, rollout_id, key), data, mode=0o600)


async def drop_kept_secrets(h: BoxHandle, rollout_id: str, key: bytes | None = None) -> None:
    """The rollout is over: its copy of the previous values leaves the box."""
    with contextlib.suppress(RemoteError):
        await h.box.remove(kept_secrets_path(h, rollout_id, key))


async def drop_all_kept_secrets(h: BoxHandle) -> int:
    """Every kept copy of an earlier secrets file leaves the box (a rotation's retire: no old
    value may stay anywhere); how many were removed."""
    s = h.paths.secrets
    try:
        names = await h.box.listdir(s.parent)
    except RemoteError:
        return 0
    gone = 0
    for name in names:
        if name.startswith(f".{s.name}.before-"):
            with contextlib.suppress(RemoteError):
                await h.box.remove(s.with_name(name))
                gone += 1
    return gone


async def write_stamp(h: BoxHandle, stamp: Stamp) -> None:
    await h.box.write_atomic(h.paths.stamp, stamp.to_bytes(), mode=0o644)


# -- activation and verification --------------------------------------------------------


def activation_argv(h: BoxHandle, how: Activation) -> list[str] | None:
    """The configured reload (or restart) argv; restart falls back to nothing configured."""
    c = h.agent.commands
    return c.restart if how is Activation.RESTART else c.reload


async def activate(h: BoxHandle, how: Activation) -> None:
    """Run reload or restart; it must exit 0 within the command timeout."""
    step = ApplyStep.RESTART if how is Activation.RESTART else ApplyStep.RELOAD
    argv = activation_argv(h, how)
    if argv is None:
        raise ActivationFailed(
            h.name, step, f"no `{how}` command configured; set commands.{how} for this agent"
        )
    try:
        done = await h.box.run(argv, timeout=h.command_timeout)
    except OperationTimeout:
        raise ActivationFailed(
            h.name, step, f"{how} did not finish within {h.command_timeout:g}s "
            f"(`{shlex.join(argv)}`; the agent's command_timeout_s)",
        ) from None  # fmt: skip
    if not done.ok:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise ActivationFailed(
            h.name, step, f"`{shlex.join(argv)}` exited {done.exit_status}: {tail[0][:200]}"
        )


async def read_health(h: BoxHandle) -> Health:
    """The agent's health answer: its health URL, else its health command."""
    url = h.agent.url(h.agent.health_url)
    if url:
        return await h.fetch_health(url)
    argv = h.agent.commands.health
    if argv:
        done = await h.box.run(argv, timeout=h.command_timeout, read_only=True)
        if not done.ok:
            raise ContractError(f"health command {shlex.join(argv)} exited {done.exit_status}")
        return parse_health(done.stdout.encode())
    raise ContractError("no health_url and no health command configured")


async def verify_loaded(h: BoxHandle, sha: str, *, timeout_s: float, clock: Clock) -> Health:
    """Poll health until the agent reports `sha` loaded; NotLoaded after `timeout_s`."""
    start = clock.now()
    delay = 0.05
    last = "no answer yet"
    while True:
        try:
            health = await read_health(h)
        except (TransportError, ContractError) as exc:
            last = str(exc)
        else:
            if health.alive and health.loaded_sha256 == sha:
                return health
            last = (
                f"alive={health.alive}, loaded {_short(health.loaded_sha256)}"
                if health.alive
                else "the agent is not alive"
            )
        if (clock.now() - start).total_seconds() >= timeout_s:
            raise NotLoaded(
                h.name,
                ApplyStep.VERIFY,
                f"config {sha[:12]} not loaded within {timeout_s:g}s ({last})",
            )
        await clock.sleep(delay)
        delay = min(delay * 2, 1.0)


# -- restore ----------------------------------------------------------------------------


async def restore_file(
    h: BoxHandle, sha: str, *, current_sha: str | bool | None = True, kept: bytes | None = None
) -> bool:
    """Put the history file `sha` back as the config, on the box: no config byte is sent.

    The kept file is read back and hashed (it is restored only when its sha matches),
    hard-linked to a temp name beside the config and posix-renamed over it, so the
    swap is atomic and the box receives nothing but two SFTP requests. `current_sha`:
    the config's sha as the caller just read it (None: no file); True: read it here.
    `kept`: the history file's bytes as the caller just read them (None: read them here).
    False when the box already has it.

    Raises:
        RestoreRefused: the history file is missing, or its bytes do not hash to `sha`.
    """
    if current_sha is True:
        current = await h.box.read_file(h.paths.config)
        current_sha = sha256_hex(current) if current is not None else None
    if current_sha == sha:
        return False
    kept_path = h.paths.history_file(sha)
    if kept is None:
        kept = await h.box.read_file(kept_path)
    if kept is None:
        raise RestoreRefused(h.name, "restore", f"{kept_path} is missing; restore by hand")
    if sha256_hex(kept) != sha:
        raise RestoreRefused(
            h.name, "restore", f"{kept_path} does not hash to its name; restore by hand"
        )
    config = h.paths.config
    tmp = config.with_name(f".{config.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        await h.box.link(kept_path, tmp)
    except RemoteError:  # no hardlink@openssh.com on this server: send the bytes after all
        await h.box.write_atomic(config, kept, mode=0o644)
        return True
    try:
        await h.box.rename(tmp, config)
    except BaseException:
        with contextlib.suppress(TransportError):
            await h.box.remove(tmp)
        raise
    return True
