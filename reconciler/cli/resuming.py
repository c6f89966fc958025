"""The resume step that `reconcile resume` and `reconcile apply` run first (rollout/resume.py).

Under the fleet lock (a dead holder's lock is taken over), find the rollout a
crash cut short, read its boxes, and finish or roll back by the fleet's
`rollout.on_resume` policy (or `--policy`). Exit 0 nothing to resume, or
finished; 3 rolled back cleanly; 4 some box could not be put back (named).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.cli.common import err, fail
from reconciler.engine.clock import SystemClock
from reconciler.engine.resume import ResumeOptions, ResumeResult, find_unfinished, resume_fleet
from reconciler.engine.session import (
    ApplyRefused,
    Link,
    Request,
    Source,
    box_timeout,
    holder_id,
    read_source,
)
from reconciler.journal.base import Holder, LockHeld, LockLease
from reconciler.journal.db import FILE_NAME as JOURNAL_FILE
from reconciler.journal.db import default_state_dir
from reconciler.journal.lock import SqliteLock
from reconciler.journal.sqlite import SqliteJournal
from reconciler.journal.takeover import acquire_or_take_over
from reconciler.rollout.recovery import Action, Mode


def state_dir_of(given: Path | None, fleet_state_dir: str | None) -> Path:
    """--state-dir, else fleet.yaml state_dir, else ~/.local/state/reconciler."""
    return Path(given or fleet_state_dir or default_state_dir()).expanduser()


async def take_lock(
    lock: SqliteLock, fleet_id: str, *, ttl_s: float, wait_s: float | None = None
) -> tuple[LockLease, LockLease | None]:
    """The fleet lock (a dead local holder's is broken): (ours, the broken one).

    `wait_s`: wait up to that long for a live holder to let go, polling (in this
    thread: the lock's SQLite connection belongs to it).

    Raises:
        LockHeld: still held by another (when the wait, if any, is over); it is named.
    """
    deadline = time.monotonic() + (wait_s or 0.0)
    told = False
    while True:
        try:
            return acquire_or_take_over(lock, fleet_id, Holder.here(), ttl_s=ttl_s)
        except LockHeld as exc:
            left = deadline - time.monotonic()
            if wait_s is None or left <= 0:
                raise
            if not told:
                err.print(
                    f"waiting up to {left:.0f}s for fleet {fleet_id}'s lock, held by "
                    f"{exc.lease.describe()}",
                    markup=False,
                )
                told = True
            await asyncio.sleep(min(0.25, left))


async def resume_first(
    repo: Path,
    state_dir: Path | None,
    reporter: Any,
    *,
    explicit: bool,
    policy: str | None = None,
    break_leases: bool = False,
    link_factory: Callable[[Source], Link] | None = None,
    wait_lock_s: float | None = None,
) -> ResumeResult | None:
    """Resume the fleet's unfinished rollout, if there is one; None when there is none.

    With `link_factory` the caller owns the connections (apply reuses them to plan);
    `wait_lock_s`: wait that long for the fleet lock (apply --wait-lock).
    """
    try:
        source = read_source(Request(repo=repo, allow_dirty=True))
    except ApplyRefused as exc:
        fail(str(exc))
    fleet = source.repo.fleet
    where = state_dir_of(state_dir, fleet.state_dir)
    lock = SqliteLock(where)
    try:
        lease, broken = await take_lock(
            lock, fleet.fleet_id, ttl_s=fleet.rollout.lease_ttl_s, wait_s=wait_lock_s
        )
    except LockHeld as exc:
        lock.close()
        fail(str(exc))
    if broken is not None:
        err.print(f"took over the lock of a dead run: {broken.describe()}", markup=False)
    journal = SqliteJournal(where)
    link = link_factory(source) if link_factory else Link(source, repo)
    opts = ResumeOptions(
        fleet_id=fleet.fleet_id,
        holder=holder_id(),
        policy=Mode(policy or fleet.rollout.on_resume),
        break_leases=break_leases,
        parallel=fleet.connection.concurrency,
        history_keep=fleet.rollout.history_keep,
        verify_timeout_s=fleet.rollout.verify_timeout_s,
        lease_ttl_s=fleet.rollout.lease_ttl_s,
        box_timeout_s=box_timeout(source.repo),
    )
    try:
        return await resume_fleet(
            source, link, journal, opts, clock=SystemClock(), reporter=reporter,
            explicit=explicit,
        )  # fmt: skip
    finally:
        if link_factory is None:
            await link.close()
        lock.release(lease)
        lock.close()
        journal.close()


def report(result: ResumeResult | None) -> None:
    """One line per box that needs a human, then the outcome."""
    if result is None:
        err.print("nothing to resume: no rollout was cut short", markup=False)
        return
    for agent, why in sorted(result.failed.items()):
        err.print(f"[bold red]{agent}: not put back: {why}[/]", highlight=False)
    how = "rolled back" if result.rolled_back else "settled"
    err.print(
        f"rollout {result.rollout_id} (found from the {result.source}): {how}, "
        f"{len(result.restored)} box(es) restored: {result.outcome}",
        markup=False,
    )


async def preview_cut_short(
    repo: Path, state_dir: Path | None, link: Link, source: Source
) -> list[str]:
    """What `apply` would settle first, in words (`--dry-run`); nothing is written.

    Reads the journal only when it exists (a dry run creates no state), then the boxes.
    """
    fleet = source.repo.fleet
    where = state_dir_of(state_dir, fleet.state_dir)
    journal = SqliteJournal(where) if (where / JOURNAL_FILE).is_file() else None
    try:
        found = await find_unfinished(
            source, link, journal, parallel=fleet.connection.concurrency, explicit=False
        )
    finally:
        if journal is not None:
            journal.close()
    if found is None:
        return []
    u = found.unfinished
    mode, actions = found.preview(Mode(fleet.rollout.on_resume))
    count = {a: sum(1 for x in actions.values() if x is a) for a in Action}
    how = (
        "roll it back (a failed gate or watchdog had judged it; its revision stays blocked)"
        if u.verdict
        else f"{mode} it (rollout.on_resume)"
    )
    lines = [
        f"rollout {u.rollout_id} was cut short ({'; '.join(u.evidence[:3])})",
        f"apply will first {how}: {count[Action.RESTORE]} box(es) put back, "
        f"{count[Action.KEEP_NEW]} kept on its target, {count[Action.KEEP_OLD]} already on "
        f"their old config, {count[Action.UNREACHABLE] + count[Action.NO_RESTORE]} for a human",
    ]
    if mode is not Mode.ROLLBACK:
        lines.append(
            "then it goes on to the head with the plan below (made from the boxes "
            "as they are now: the put-back boxes are in it again)"
        )
    return lines
