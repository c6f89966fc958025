"""What the driver needs of box operations run by worker processes (engine/workers.py).

With workers, the coordinator's driver does not run `apply_box`/`restore_box` itself:
it hands each ApplyBox and RestoreBox to a `RemoteBoxes`, which returns the event a
worker recorded. Everything else (the machine, the watchdog, the gates, the verdict's
mark on the stamps, the journal's rollout record) stays in the coordinator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from reconciler.rollout.commands import ApplyBox, RestoreBox
from reconciler.rollout.events import Event
from reconciler.rollout.reporter import JsonValue

if TYPE_CHECKING:
    from reconciler.engine.driver import Options

Note = Callable[..., None]  # Driver.note: (kind, **fields)
# Runs one box operation in the coordinator itself (Driver.apply_here / restore_here): for
# work no worker claimed in time (every worker gone).
Here = Callable[[ApplyBox | RestoreBox, str | None], Awaitable[Event]]


@dataclass(frozen=True, slots=True)
class BoxDone:
    """One box operation as a worker finished it."""

    agent: str
    event: Event  # BoxApplied, BoxFailed, BoxRestored or BoxRestoreFailed
    worker: str  # who ran it (user@host pid N)
    wave: int = 0
    pre_sha: str | None = None
    kept_secrets: bool = False  # the worker kept the box's previous secrets on it
    told: bool = False  # run by the coordinator itself: its notes are already out


class RemoteBoxes(Protocol):
    """Box operations run elsewhere; `start` once the rollout has its id, `stop` at its end."""

    def start(self, options: Options, note: Note, here: Here) -> None: ...

    async def apply(self, cmd: ApplyBox) -> BoxDone: ...

    async def restore(self, cmd: RestoreBox, verdict_on: str | None) -> BoxDone: ...

    async def stop(self) -> None: ...


__all__ = ["BoxDone", "Here", "JsonValue", "Note", "RemoteBoxes"]
