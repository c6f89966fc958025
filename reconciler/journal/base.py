"""The journal and the lock behind two small Protocols, with the records they hand back.

The journal is the reconciler's memory of its own rollouts: the plan, each
box's pre-change sha, and every intent, result and event, written before and
after the driver acts, so a killed run can be resumed (`replay()` gives the
events to fold with `step`). The lock makes one rollout at a time per fleet,
naming its holder when it refuses. The boxes' stamps stay the truth; the
journal only helps. SQLite is the embedded default (journal/sqlite.py); a
shared backend for teams (PostgreSQL) can implement the same Protocols.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reconciler.errors import StateError
from reconciler.journal import liveness
from reconciler.plan.model import Plan
from reconciler.rollout.commands import Command
from reconciler.rollout.events import Event
from reconciler.rollout.phases import Outcome
from reconciler.rollout.records import JSONObject, command_from_record, event_from_record


class JournalError(StateError):
    """The journal cannot do what was asked; the message says which rollout and what to do."""


class UnknownRollout(JournalError):
    """No rollout with that id in this journal."""


class LockError(StateError):
    """Base of the fleet lock's errors."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or wants) a fleet lock: user, host, process, and the rollout once it has one.

    `machine_id`, `boot_id` and `start_time` tell whether the holder is still running
    (journal/liveness.py); None in records written before they were kept (unknown).
    """

    user: str
    host: str
    pid: int
    rollout_id: str | None = None
    machine_id: str | None = None
    boot_id: str | None = None
    start_time: int | None = None

    @classmethod
    def here(cls, rollout_id: str | None = None) -> Holder:
        """This process, on this machine, as this user."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME (containers)
            user = str(os.getuid())
        me = liveness.here()
        return cls(
            user=user, host=me.host, pid=me.pid, rollout_id=rollout_id,
            machine_id=me.machine_id, boot_id=me.boot_id, start_time=me.start_time,
        )  # fmt: skip

    def bound(self, rollout_id: str) -> Holder:
        """The same holder, naming the rollout it holds the lock for."""
        return dataclasses.replace(self, rollout_id=rollout_id)

    def __str__(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    def worker_name(self, pid: int | None = None) -> str:
        """How a `reconcile worker` process of this user and machine names itself (its own
        pid, or `pid`: a worker another process started)."""
        return f"{dataclasses.replace(self, pid=self.pid if pid is None else pid)} worker"


@dataclass(frozen=True, slots=True)
class LockLease:
    """A fleet lock as held: by whom, since when, until when (renew it before then)."""

    lock_id: str
    fleet_id: str
    holder: Holder
    since: datetime
    expires: datetime
    heartbeat: datetime | None = None  # the last renewal (None: a lock taken before it was kept)

    def expired(self, now: datetime) -> bool:
        return self.expires <= now

    def dead(self, now: datetime) -> str | None:
        """Why the holder is certainly dead (its lock may be taken over), or None: it expired,
        it ran on this machine and its process is gone (or its pid was reused, or the
        machine rebooted), or it runs elsewhere and its heartbeat is three periods old."""
        if self.expired(now):
            return "its lock expired"
        if liveness.holder_gone(self.holder):
            return "its process is gone from this machine"
        if not liveness.on_this_machine(self.holder) and liveness.heartbeat_stale(
            self.heartbeat, now
        ):
            return f"its heartbeat is older than {liveness.STALE_AFTER_S:g}s"
        return None

    def describe(self) -> str:
        """`alice@laptop pid 42, rollout r-1, since 2026-01-01T00:00:00+00:00 (until ...)`."""
        rollout = self.holder.rollout_id or "not started yet"
        return (
            f"{self.holder}, rollout {rollout}, since {self.since.isoformat()}"
            f" (expires {self.expires.isoformat()})"
        )


class LockHeld(LockError):
    """The fleet is locked by another live holder; `lease` names it."""

    def __init__(self, lease: LockLease) -> None:
        super().__init__(
            f"fleet {lease.fleet_id} is locked by {lease.describe()}; "
            f"wait for it with --wait-lock, or if that run is dead, force-release lock "
            f"{lease.lock_id}"
        )
        self.lease = lease


class LockLost(LockError):
    """Our lock is gone (it expired and was taken over, or was force-released)."""


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """One rollout as journaled: plan, pre-change shas, holder, and how it ended (if it did)."""

    rollout_id: str
    fleet_id: str
    plan_id: str
    target_revision: str
    holder: Holder
    started_at: datetime
    plan_text: str
    pre_shas: Mapping[str, str | None]
    finished_at: datetime | None = None
    outcome: Outcome | None = None
    summary: JSONObject | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def plan(self) -> Plan:
        """The plan the rollout was started with (parsed on demand)."""
        return Plan.model_validate_json(self.plan_text)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One journal line of a rollout: an intent, a result, or an event; `seq` orders them."""

    seq: int
    rollout_id: str
    kind: str  # "intent" | "result" | "event"
    agent: str | None
    intent: int | None  # for a result: the seq of its intent
    body: JSONObject
    at: datetime

    def event(self) -> Event:
        """The event of an event record."""
        if self.kind != "event":
            raise JournalError(f"journal record {self.seq} is an {self.kind}, not an event")
        return event_from_record(self.body)

    def command(self) -> Command:
        """The command of an intent record."""
        if self.kind != "intent":
            raise JournalError(f"journal record {self.seq} is a {self.kind}, not an intent")
        record = self.body.get("command")
        if not isinstance(record, dict):
            raise JournalError(f"journal record {self.seq} holds no command")
        return command_from_record(record)


class Journal(Protocol):
    """Durable records of rollouts.

    A write is on disk when the call returns, except inside `batch()`: there step records
    (intents, results, events) are held until `commit()` (or the batch's end, or
    `finish`), which writes them all in one transaction. A kill loses the records held
    since the last commit and nothing before them. Who batches decides where the commits
    go: before any box write that a resume needs the record of (journal/sqlite.py).
    """

    def batch(self) -> AbstractContextManager[None]:
        """Hold step records until `commit()`; leaving the batch commits what is held."""
        ...

    def commit(self) -> int:
        """Write the held records in one transaction (one fsync); how many (0: none held)."""
        ...

    @property
    def held(self) -> int:
        """How many records are held, not yet on disk (0 outside a batch)."""
        ...

    def begin_rollout(self, plan: Plan, pre_shas: Mapping[str, str | None], holder: Holder) -> str:
        """Record a new rollout of `plan` (and each box's pre-change sha); return its id."""
        ...

    def record_intent(
        self,
        rollout_id: str,
        agent: str | None,
        command: Command,
        data: JSONObject | None = None,
    ) -> int:
        """Record that the driver is about to run `command`; return the intent's seq."""
        ...

    def record_result(
        self, rollout_id: str, intent: int, *, ok: bool, data: JSONObject | None = None
    ) -> int:
        """Record how the command of intent `intent` went; return the result's seq."""
        ...

    def record_event(self, rollout_id: str, event: Event) -> int:
        """Record an event fed to the machine; return its seq."""
        ...

    def events(self, rollout_id: str) -> list[Event]:
        """The rollout's events in order."""
        ...

    def replay(self, rollout_id: str) -> list[Event]:
        """The events to fold with `step`, from `Rollout.start(plan, pre_shas)`, to resume."""
        ...

    def steps(self, rollout_id: str) -> list[StepRecord]:
        """Every record of the rollout, in order."""
        ...

    def open_intents(self, rollout_id: str) -> list[StepRecord]:
        """Intents with no result yet: commands a crash may have cut short."""
        ...

    def rollout(self, rollout_id: str) -> RolloutRecord:
        """One rollout's record; UnknownRollout when there is none."""
        ...

    def unfinished(self, fleet_id: str | None = None) -> list[RolloutRecord]:
        """Rollouts begun and never finished (oldest first): candidates to resume."""
        ...

    def finish(self, rollout_id: str, outcome: Outcome, summary: JSONObject) -> None:
        """Close a rollout with its outcome and a summary (names and figures only)."""
        ...

    def history(self, fleet_id: str | None = None, limit: int = 50) -> list[RolloutRecord]:
        """Past and running rollouts, newest first."""
        ...

    def take_fence(self, fleet_id: str, floor: int) -> int:
        """A new fencing number for the fleet, atomically: the counter becomes
        max(counter, `floor`) + 1 and is returned (`floor`: the highest number seen on the
        boxes). Numbers never repeat, even when the boxes' stamps were reset."""
        ...


class Lock(Protocol):
    """One rollout at a time per fleet, across processes and (with a shared backend) machines."""

    def acquire(self, fleet_id: str, holder: Holder, *, ttl_s: float) -> LockLease:
        """Take the fleet's lock for `ttl_s` seconds; LockHeld naming a live holder."""
        ...

    def wait(
        self,
        fleet_id: str,
        holder: Holder,
        *,
        ttl_s: float,
        timeout_s: float,
        poll_s: float = 1.0,
    ) -> LockLease:
        """Take the lock, waiting up to `timeout_s` for the holder to let go; else LockHeld."""
        ...

    def renew(self, lease: LockLease, *, ttl_s: float) -> LockLease:
        """Push our lock's expiry to now + `ttl_s`; LockLost when it is no longer ours."""
        ...

    def bind(self, lease: LockLease, rollout_id: str) -> LockLease:
        """Name the rollout the lock is held for (once `begin_rollout` gave its id)."""
        ...

    def release(self, lease: LockLease) -> None:
        """Let go of our lock; LockLost when it is no longer ours."""
        ...

    def force_release(self, lock_id: str) -> LockLease | None:
        """Break a lock by id (an operator's decision); the lease broken, or None."""
        ...

    def holder(self, fleet_id: str) -> LockLease | None:
        """The fleet's lock as held now (maybe expired), or None."""
        ...
