"""The two things the engine does to one box: `apply_box` and `restore_box`.

Both are written once, here, and used by the driver (a rollout and its rollback),
by resume (finishing or rolling back a cut-short rollout) and later by rotation.
Each step is announced to a `Boundary` before it runs: the caller journals the
intent, counts it or (in the crash tests) dies there.

    apply_box:   lease -> stamp check (CAS) -> write -> secrets -> activate -> verify
                 -> stamp -> release
    restore_box: lease -> write (from the box's own history) -> secrets -> activate
                 -> verify -> stamp -> release

The stamp written is decided by one pure rule (`reconciler.render.stamp`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, TypeVar

from reconciler.engine import boxops
from reconciler.engine.boxops import BoxHandle, BoxOpError
from reconciler.engine.keeper import LeaseKeeper
from reconciler.journal.liveness import HEARTBEAT_S
from reconciler.model.box import ContractError, RotationMark, Stamp
from reconciler.plan.model import Activation, Delivery, restore_activations
from reconciler.render.stamp import (
    SecretState,
    already_there,
    blocked_after,
    fenced_out,
    make_stamp,
    restamp_needed,
    restore_refusal,
    secrets_before,
)
from reconciler.rollout.clock import Clock
from reconciler.rollout.events import ApplyStep
from reconciler.transport.base import TransportError

T = TypeVar("T")

# Announces a step (its short name: "lease", "write", ...) and runs it.
Boundary = Callable[[str, Awaitable[Any]], Awaitable[Any]]


async def run_plainly(_name: str, step: Awaitable[T]) -> T:
    """A boundary that only runs the step."""
    return await step


@dataclass(frozen=True, slots=True)
class Crew:
    """Who works on the box, and their limits: written into every lease and stamp."""

    holder: str
    rollout_id: str
    fleet_id: str
    clock: Clock
    lease_ttl_s: float = 900.0
    verify_timeout_s: float = 60.0
    history_keep: int = 5
    fence: int = 0  # this rollout's fencing number: written into every lease and stamp
    fleet_key: bytes | None = field(default=None, repr=False)  # names the kept secrets copy
    # Renews the heartbeat of the leases taken (None: each operation keeps its own, for its
    # duration; the driver passes one that outlives a failed apply until its restore).
    keeper: LeaseKeeper | None = None
    heartbeat_s: float = HEARTBEAT_S  # how often a lease's heartbeat is renewed
    # The run's realpaths of directories per login (boxes sharing a host ask once); None:
    # each box operation asks for its own.
    realpaths: boxops.RealPaths | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ApplyJob:
    """What to put on one box, and what the plan saw there."""

    target_sha: str
    pre_sha: str | None
    delivery: Delivery
    activation: Activation
    revision: str  # what the stamp records
    data: bytes  # the config bytes (unused for a RESTORE delivery found in history)
    stamp_sha: str | None  # the stamp the plan saw (compare-and-swap)
    stamp_revision: str | None
    secrets: bytes | None = None  # the new secrets file; None: secrets unchanged
    secrets_fingerprint: str | None = None
    allowed_paths: tuple[str, ...] = ()  # fleet.yaml connection.allowed_paths (empty: unchecked)
    secret_state: SecretState | None = None  # what the stamp records of secrets (None: derived)
    rotation_done: frozenset[str] = frozenset()  # secrets whose rotation mark this job clears


@dataclass(frozen=True, slots=True)
class RestoreJob:
    """What to put one box back on."""

    pre_sha: str | None  # None: it had no config file, nothing to restore
    pre_revision: str | None
    activation: Activation
    old_secrets: bytes | None = None  # the secrets file before the rollout (None: unknown)
    look_for_kept_secrets: bool = False  # resume: the rollout may have kept them on the box
    verdict_on: str | None = None  # the revision a failed gate or watchdog condemned


STEP_OF = {
    "lease": ApplyStep.LEASE,
    "stamp-check": ApplyStep.STAMP_CHECK,
    "write": ApplyStep.WRITE,
    "secrets": ApplyStep.WRITE,
    "verify": ApplyStep.VERIFY,
    "stamp": ApplyStep.STAMP,
}


@contextlib.asynccontextmanager
async def _keeping(crew: Crew) -> AsyncIterator[Crew]:
    """The crew with a lease keeper: its own, or one for this box operation alone."""
    if crew.keeper is not None:
        yield crew
        return
    keeper = LeaseKeeper(crew.clock, every_s=crew.heartbeat_s)
    try:
        yield replace(crew, keeper=keeper)
    finally:
        await keeper.close()


async def apply_box(
    h: BoxHandle,
    job: ApplyJob,
    crew: Crew,
    *,
    boundary: Boundary = run_plainly,
    reached: list[ApplyStep] | None = None,
    old_secrets: Callable[[], Awaitable[bytes | None]] | None = None,
    former: BoxHandle | None = None,
) -> None:
    """Put `job` on the box: lease, compare, deliver, activate, verify, stamp, release.

    `reached` collects the steps begun (the last is where a failure happened);
    `old_secrets` reads (once, and keeps) the secrets file before the first write.
    `former`: a move: the same box at its old config path. Its lease is taken too, the
    compare-and-swap is made there (the plan read the box there), the new path must be
    free (or already ours), and the old path is left untouched: `clear_former` removes
    it once the rollout is over, a rollback finds it as it was.
    The leases' heartbeats are renewed while they are held (`crew.keeper`).

    Raises:
        BoxOpError, TransportError, ContractError: the step that failed is in `reached`.
    """
    async with _keeping(crew) as kept:
        await _apply_box(h, job, kept, boundary=boundary, reached=reached,
                         old_secrets=old_secrets, former=former)  # fmt: skip


async def _apply_box(
    h: BoxHandle,
    job: ApplyJob,
    crew: Crew,
    *,
    boundary: Boundary,
    reached: list[ApplyStep] | None,
    old_secrets: Callable[[], Awaitable[bytes | None]] | None,
    former: BoxHandle | None,
) -> None:
    reached = reached if reached is not None else []
    activate_step = ApplyStep.RESTART if job.activation is Activation.RESTART else ApplyStep.RELOAD

    async def step(name: str, work: Awaitable[T]) -> T:
        reached.append(activate_step if name == "activate" else STEP_OF.get(name, reached[-1]))
        result: T = await boundary(name, work)
        return result

    reached.append(ApplyStep.CONNECT)
    await step("lease", _take_lease(h, crew))
    if former is not None:
        await _take_lease(former, crew)
    # The compare-and-swap's reads and where the writes would land: asked at once (both
    # read-only; the check is judged before the first write, below).
    now, inside = await step("stamp-check", boxops.together(
        boxops.read_now(h), _where_writes_land(h, job, crew.realpaths or boxops.RealPaths()),
    ))  # fmt: skip
    secrets = (job.secrets is not None, job.secrets_fingerprint)
    if already_there(now.stamp, now.file_sha, sha=job.target_sha, revision=job.revision,
                     secrets=secrets):  # fmt: skip
        # Another run (a second machine applying the same head) put exactly our target
        # here: nothing to write; check it runs, and leave its stamp as it is.
        await step("verify", boxops.verify_loaded(
            h, job.target_sha, timeout_s=crew.verify_timeout_s, clock=crew.clock))  # fmt: skip
        await step("release", _release(h, former, crew))
        return
    if (why := fenced_out(now.stamp, crew.fence)) is not None:
        raise boxops.MovedOn(h.name, ApplyStep.STAMP_CHECK, why)
    previous = now.stamp  # the stamp whose history the new stamp carries on
    if former is None:
        done = boxops.check_unmoved(
            h, now, stamp_sha=job.stamp_sha, stamp_revision=job.stamp_revision,
            pre_sha=job.pre_sha, target_sha=job.target_sha, rollout_id=crew.rollout_id,
        )  # fmt: skip
    else:
        done, previous = await _check_move(h, former, now, job, crew)
    if not done:
        if inside is not None:  # before the first write
            raise inside
        await step("write", _deliver(h, job, now.file))
        if job.secrets is not None:
            # read only now, once the box is known to need the write: `old_secrets` keeps
            # what it reads as the box's secrets before this rollout (its rollback's)
            if old_secrets is not None:
                old = await old_secrets()
            else:
                old = await h.box.read_file(h.paths.secrets)
            if old is not None and old != job.secrets:
                await boxops.keep_secrets(h, crew.rollout_id, old, crew.fleet_key)
            await step("secrets", boxops.write_secrets(h, job.secrets, current=old))
        try:
            await step("activate", boxops.activate(h, job.activation))
        except BoxOpError as exc:
            raise type(exc)(exc.box, activate_step, exc.message) from exc
    await step("verify", boxops.verify_loaded(
        h, job.target_sha, timeout_s=crew.verify_timeout_s, clock=crew.clock))  # fmt: skip
    if not done:
        stamp = make_stamp(
            fleet_id=crew.fleet_id, agent=h.name, revision=job.revision,
            config_sha256=job.target_sha, rollout_id=crew.rollout_id, outcome="applied",
            now=crew.clock.now(), previous=previous, keep=crew.history_keep,
            secrets=_secret_state(job, previous),
            blocked_revision=blocked_after(previous, outcome="applied", revision=job.revision),
            fence=crew.fence,
        )  # fmt: skip
        # the history listing for the prune comes with the stamp write; files go after it
        _, names = await boxops.together(
            step("stamp", _stamp_unless_moved(h, now.stamp, stamp, ApplyStep.STAMP)),
            h.box.listdir(h.paths.history_dir),
        )
        keep = [e.config_sha256 for e in stamp.history]
        if job.pre_sha:
            keep.append(job.pre_sha)
        await boxops.prune_history(h, keep, names=names)
    await step("release", _release(h, former, crew))


async def _release(h: BoxHandle, former: BoxHandle | None, crew: Crew) -> None:
    if former is not None:
        await _release_one(former, crew, taken=True)
    await _release_one(h, crew, taken=True)


async def _check_move(
    h: BoxHandle, former: BoxHandle, now: boxops.BoxNow, job: ApplyJob, crew: Crew
) -> tuple[bool, Stamp | None]:
    """A move's compare-and-swap: the old path is what the plan saw, the new one is free or
    already ours. (True when already done, the stamp the new one carries on.)

    Raises:
        StampMoved: the old path changed since the plan, or another stamp holds the new one.
        MovedOn: a newer rollout wrote the old path.
    """
    old = await boxops.read_now(former)
    if (why := fenced_out(old.stamp, crew.fence)) is not None:
        raise boxops.MovedOn(h.name, ApplyStep.STAMP_CHECK, why)
    mine = now.stamp is not None and now.stamp.rollout_id == crew.rollout_id
    if now.stamp is not None and not (mine and now.stamp.config_sha256 == job.target_sha):
        raise boxops.StampMoved(
            h.name, ApplyStep.STAMP_CHECK, f"the move's new path {h.paths.config} is already "
            f"stamped (rollout {now.stamp.rollout_id}, agent {now.stamp.agent}); make a new "
            "plan, or clear that path",
        )  # fmt: skip
    if mine:
        return now.file_sha == job.target_sha, old.stamp
    boxops.check_unmoved(
        former, old, stamp_sha=job.stamp_sha, stamp_revision=job.stamp_revision,
        pre_sha=job.pre_sha, target_sha=job.target_sha, rollout_id=crew.rollout_id,
    )  # fmt: skip
    return False, old.stamp


def _secret_state(job: ApplyJob, before: Stamp | None) -> SecretState:
    """What the new stamp records of secrets: the job's, else the box's as it was (with the
    new file's fingerprint when this job writes the secrets file)."""
    was = SecretState.of(before)
    if job.secret_state is not None:
        # the rotation marks: the box's own, this job's set or replaced, those it ends cleared
        marks = {**was.rotation, **job.secret_state.rotation}
        marks = {n: m for n, m in marks.items() if n not in job.rotation_done}
        return SecretState(job.secret_state.fingerprint, job.secret_state.prints, marks)
    rotation = {n: m for n, m in was.rotation.items() if n not in job.rotation_done}
    if job.secrets is None:
        return SecretState(was.fingerprint, was.prints, rotation)
    return SecretState(job.secrets_fingerprint or was.fingerprint, {}, rotation)


async def _where_writes_land(
    h: BoxHandle, job: ApplyJob, realpaths: boxops.RealPaths
) -> BoxOpError | TransportError | None:
    """Resolve, on the box, where a write to the config (and secrets) file would land and
    the allowed directories (all at once; `realpaths` keeps them per login for the run).

    Returns the error to raise before the first write, or None: a BoxOpError when a
    directory resolves under none of the allowed ones (a symlinked directory on the box
    leads elsewhere), the TransportError the resolving met; None when all lie inside (or
    `job.allowed_paths` is empty: unchecked). Nothing is raised here: a box with nothing
    to write is not failed by a check it does not need.
    """
    if not job.allowed_paths:
        return None
    parents = {h.paths.config.parent, h.paths.secrets.parent} if job.secrets is not None else {
        h.paths.config.parent}  # fmt: skip
    wanted = [*(PurePosixPath(a) for a in job.allowed_paths), *sorted(parents)]
    try:
        reals = await boxops.together(*(realpaths.of(h, p) for p in wanted))
    except TransportError as exc:
        return exc
    allowed = reals[: len(job.allowed_paths)]
    for parent, real in zip(wanted[len(allowed) :], reals[len(allowed) :], strict=True):
        if not any(real == a or a in real.parents for a in allowed):
            return BoxOpError(
                h.name, ApplyStep.STAMP_CHECK,
                f"{parent} resolves to {real} on the box, under none of "
                f"connection.allowed_paths ({', '.join(map(str, allowed))}); nothing written",
            )  # fmt: skip
    return None


async def _take_lease(h: BoxHandle, crew: Crew) -> None:
    """Take the box's lease and keep its heartbeat (crew.keeper) until `_release_one`."""
    lease = await boxops.take_lease(
        h, holder=crew.holder, rollout_id=crew.rollout_id, ttl_s=crew.lease_ttl_s,
        now=crew.clock.now(), fence=crew.fence,
    )  # fmt: skip
    if crew.keeper is not None:
        crew.keeper.hold(h, lease, ttl_s=crew.lease_ttl_s)


async def _release_one(h: BoxHandle, crew: Crew, *, taken: bool = False) -> None:
    """Stop the lease's heartbeat, then release it."""
    if crew.keeper is not None:
        await crew.keeper.drop(h)
    await boxops.release_lease(h, rollout_id=crew.rollout_id, taken=taken)


async def _stamp_unless_moved(
    h: BoxHandle, seen: Stamp | None, stamp: Stamp, step: ApplyStep | str
) -> None:
    """Write `stamp` unless the box's stamp changed since `seen` was read (under our lease,
    only a writer that broke it can have): fencing, right before the write."""
    again = await boxops.read_stamp(h)
    if again != seen:
        who = f"{again.rollout_id} (fence {again.fence})" if again is not None else "someone"
        raise boxops.MovedOn(h.name, step, f"the stamp was rewritten by {who} while this "
                             "rollout held the box; left alone")  # fmt: skip
    await boxops.write_stamp(h, stamp)


async def _deliver(h: BoxHandle, job: ApplyJob, current: bytes | None) -> None:
    """The target file onto the box: from its history when the plan says so, else sent."""
    if job.delivery is Delivery.RESTORE:
        with contextlib.suppress(boxops.RestoreRefused):
            await boxops.keep_in_history(h, current) if current is not None else None
            sha = boxops.sha256_hex(current) if current is not None else None
            await boxops.restore_file(h, job.target_sha, current_sha=sha)
            return
    await boxops.write_config(h, job.data, current)


async def restore_box(
    h: BoxHandle, job: RestoreJob, crew: Crew, *, boundary: Boundary = run_plainly
) -> None:
    """Put the box back on `job.pre_sha` (see `_restore_box`); the lease's heartbeat is
    renewed while it is held (`crew.keeper`)."""
    async with _keeping(crew) as kept:
        await _restore_box(h, job, kept, boundary=boundary)


async def _restore_box(h: BoxHandle, job: RestoreJob, crew: Crew, *, boundary: Boundary) -> None:
    """Put the box back on `job.pre_sha` from its own history; no config byte is sent.

    The agent is reloaded unless it already runs the old config (and no secrets were put
    back); a crashed agent that refuses a reload is restarted. The stamp records the
    restore (and the verdict's blocked revision) unless it already does.

    Raises:
        RestoreRefused: nothing to restore (no file before, or its history copy is bad).
        BoxOpError, TransportError, ContractError: a step failed.
    """
    pre = job.pre_sha
    if pre is None:
        raise boxops.RestoreRefused(
            h.name, "restore", "the box had no config file before this rollout; there is "
            "nothing to restore: decide by hand whether to keep or remove the new one",
        )  # fmt: skip
    await boundary("lease", _take_lease(h, crew))
    # Read at once, all read-only: the stamp and config (judged before any write), the
    # history copy, the kept secrets (resume), and whether the agent runs `pre` already
    # (only a reload changes that; asked early only when no secrets can be put back).
    look = job.old_secrets is None and job.look_for_kept_secrets
    ask_health = job.old_secrets is None and not look
    now, history, kept_secrets, running = await boxops.together(
        boxops.read_now(h), h.box.read_file(h.paths.history_file(pre)),
        _read_kept_secrets(h, crew) if look else _nothing(),
        _runs(h, pre) if ask_health else _nothing(),
    )  # fmt: skip
    why = restore_refusal(now.stamp, rollout_id=crew.rollout_id, pre_sha=pre, fence=crew.fence)
    if why is not None:
        await _release_one(h, crew, taken=True)
        raise boxops.MovedOn(h.name, "restore", why)
    await boundary("write", boxops.restore_file(h, pre, current_sha=now.file_sha, kept=history))
    old_secrets = job.old_secrets if job.old_secrets is not None else kept_secrets
    put_back = False
    if old_secrets is not None:
        put_back = await boundary("secrets", boxops.write_secrets(h, old_secrets))
    await boundary("activate", _reactivate(h, job, pre, secrets_put_back=put_back,
                                           running=running))  # fmt: skip
    await boundary("verify", boxops.verify_loaded(
        h, pre, timeout_s=crew.verify_timeout_s, clock=crew.clock))  # fmt: skip
    blocked = blocked_after(now.stamp, outcome="rolled-back", revision=job.pre_revision,
                            verdict_on=job.verdict_on)  # fmt: skip
    if restamp_needed(now.stamp, sha=pre, rollout_id=crew.rollout_id, blocked=blocked):
        stamp = make_stamp(
            fleet_id=crew.fleet_id, agent=h.name, revision=job.pre_revision or "unmanaged",
            config_sha256=pre, rollout_id=crew.rollout_id, outcome="rolled-back",
            now=crew.clock.now(), previous=now.stamp, keep=crew.history_keep,
            secrets=secrets_before(now.stamp, crew.rollout_id),
            blocked_revision=blocked, fence=max(crew.fence, now.stamp.fence if now.stamp else 0),
        )  # fmt: skip
        await boundary("stamp", _stamp_unless_moved(h, now.stamp, stamp, "restore"))
    await boundary("release", _release_one(h, crew))


async def clear_path(h: BoxHandle) -> list[str]:
    """Remove reconciler's files at `h`'s paths (config, secrets, history dir, then the
    stamp, last); the paths removed. Nothing else in the directory is touched."""
    removed: list[str] = []
    for path in (h.paths.config, h.paths.secrets):
        if await h.box.stat(path) is not None:
            await h.box.remove(path)
            removed.append(str(path))
    if await h.box.stat(h.paths.history_dir) is not None:
        await h.box.rmtree(h.paths.history_dir)
        removed.append(f"{h.paths.history_dir}/")
    if await h.box.stat(h.paths.stamp) is not None:
        await h.box.remove(h.paths.stamp)
        removed.append(str(h.paths.stamp))
    return removed


async def clear_former(
    former: BoxHandle, crew: Crew, *, boundary: Boundary = run_plainly
) -> list[str]:
    """A move is over: the old path's files leave the box (what `clear_path` removes), only
    when the old path's stamp names this agent and fleet (else left alone: []).

    Each step is announced to `boundary` ("lease", "clear", "release"). `clear_path` removes
    the stamp last, so a clear cut short leaves the stamp (and a lease): a resume finds it.
    """
    await boundary("lease", _take_lease(former, crew))
    try:
        stamp = await boxops.read_stamp(former)
        if stamp is None or stamp.agent != former.name or stamp.fleet_id != crew.fleet_id:
            return []
        if (why := fenced_out(stamp, crew.fence)) is not None:
            raise boxops.MovedOn(former.name, "move", why)
        removed: list[str] = await boundary("clear", clear_path(former))
        return removed
    finally:
        await boundary("release", _release_one(former, crew, taken=True))


async def drop_new_path(h: BoxHandle, crew: Crew, *, target_sha: str | None) -> list[str]:
    """A move given up: the new path's files go, only when ours (its stamp names this
    rollout, or no stamp and the file is the move's target); the paths removed.

    Raises:
        MovedOn: another rollout stamped the new path since.
    """
    await _take_lease(h, crew)
    try:
        now = await boxops.read_now(h)
        s = now.stamp
        if s is not None and s.rollout_id != crew.rollout_id:
            raise boxops.MovedOn(
                h.name, "restore", f"{h.paths.stamp} is stamped by rollout {s.rollout_id} "
                "since this rollout moved the box there; left alone",
            )  # fmt: skip
        if s is not None or (now.file_sha is not None and now.file_sha == target_sha):
            return await clear_path(h)
        return []
    finally:
        await _release_one(h, crew)


async def restore_moved_box(
    h: BoxHandle,
    former: BoxHandle,
    job: RestoreJob,
    crew: Crew,
    *,
    target_sha: str | None,
    boundary: Boundary = run_plainly,
) -> None:
    """Roll a move back: the new path's files go, only when ours (`drop_new_path`), then
    the old path, untouched by the move, is put back to work as `restore_box` does there.

    Raises:
        MovedOn: another rollout stamped the new path since.
        BoxOpError, TransportError, ContractError: a step failed.
    """
    await drop_new_path(h, crew, target_sha=target_sha)
    await restore_box(former, job, crew, boundary=boundary)


async def _nothing() -> None:
    return None


async def _read_kept_secrets(h: BoxHandle, crew: Crew) -> bytes | None:
    return await h.box.read_file(boxops.kept_secrets_path(h, crew.rollout_id, crew.fleet_key))


async def _runs(h: BoxHandle, sha: str) -> bool:
    """The agent answers alive with `sha` loaded (False when it does not answer)."""
    try:
        health = await boxops.read_health(h)
    except (TransportError, ContractError):
        return False
    return health.alive and health.loaded_sha256 == sha


async def _reactivate(
    h: BoxHandle, job: RestoreJob, pre: str, *, secrets_put_back: bool, running: bool | None
) -> None:
    """Reload (or restart) unless the agent already runs `pre` (and no secrets were put
    back); restart a crashed one. `running`: whether it did when asked just before (None:
    ask now)."""
    if not secrets_put_back:
        if running is None:
            running = await _runs(h, pre)
        if running:
            return
    *first, last = restore_activations(
        job.activation, can_restart=h.agent.commands.restart is not None
    )
    for how in first:
        with contextlib.suppress(BoxOpError):
            await boxops.activate(h, how)
            return
    await boxops.activate(h, last)


def _without(marks: dict[str, RotationMark], secret: str) -> dict[str, RotationMark]:
    return {n: m for n, m in marks.items() if n != secret}


async def retire_box(h: BoxHandle, crew: Crew, secret: str) -> bool:
    """A rotation's last step on one box: no old value is left on it (kept copies of earlier
    secrets files are removed) and its stamp no longer records the rotation. True when the
    stamp changed.

    Raises:
        MovedOn: another rollout rewrote the stamp meanwhile.
        BoxOpError, TransportError: a step failed.
    """
    await _take_lease(h, crew)
    try:
        now = await boxops.read_now(h)
        if (why := fenced_out(now.stamp, crew.fence)) is not None:
            raise boxops.MovedOn(h.name, "retire", why)
        await boxops.drop_all_kept_secrets(h)
        if now.stamp is None:
            return False
        # the history entries drop the mark too: a later rollout's restore puts the stamp's
        # secret state back from them, and must not bring a finished rotation back
        entries = now.stamp.history
        history = [e.model_copy(update={"rotation": _without(e.rotation, secret)})
                   for e in entries]  # fmt: skip
        if secret not in now.stamp.rotation and history == entries:
            return False
        retired = now.stamp.model_copy(
            update={"rotation": _without(now.stamp.rotation, secret), "history": history}
        )
        await _stamp_unless_moved(h, now.stamp, retired, "retire")
        return True
    finally:
        await _release_one(h, crew, taken=True)
