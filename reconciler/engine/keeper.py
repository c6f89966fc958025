"""The heartbeat of the box leases a run holds: each renewed every `every_s` while held.

A run takes a box's lease for one box operation, and a box whose apply failed after
a write keeps it until its restore. For all that time another run (on another
machine) must see the lease as alive: `LeaseKeeper.hold` starts one small task per
lease that, every `every_s` (10 s), rewrites the lease with a fresh `heartbeat_at`
(`boxops.renew_lease`: read it back, write it only while it is still ours). `drop`
stops it before the lease is released (waiting for a renewal in flight, so that no
late write brings back a lease just removed). A box operation shorter than `every_s`
is never renewed: no round trip is added to a fast apply.

The pauses are real time (`asyncio.sleep`), not the rollout's clock: a test's fake
clock advances on every sleep it is asked for, and the heartbeat must not move it.
The heartbeat written is the rollout clock's `now`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reconciler.engine import boxops
from reconciler.engine.boxops import BoxHandle, Lease
from reconciler.journal.liveness import HEARTBEAT_S
from reconciler.rollout.clock import Clock
from reconciler.transport.base import TransportError

Pause = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _Held:
    handle: BoxHandle
    lease: Lease
    ttl_s: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    beats: int = 0


class LeaseKeeper:
    """Keeps the heartbeat of every box lease held through it (see the module docstring)."""

    def __init__(
        self, clock: Clock, *, every_s: float = HEARTBEAT_S, pause: Pause = asyncio.sleep
    ) -> None:
        if every_s <= 0:
            raise ValueError(f"a heartbeat period must be positive, got {every_s}")
        self.clock = clock
        self.every_s = every_s
        self._pause = pause
        self._held: dict[tuple[str, str], _Held] = {}  # (agent, lease dir) -> its keeping

    def held(self) -> list[str]:
        """The agents whose leases are being kept (a move holds two: old and new path)."""
        return sorted({agent for agent, _ in self._held})

    def hold(self, h: BoxHandle, lease: Lease, *, ttl_s: float) -> None:
        """Keep `lease` (just taken on `h`) alive until `drop`: renewed every `every_s`."""
        key = _key(h)
        old = self._held.pop(key, None)
        if old is not None and old.task is not None:
            old.task.cancel()  # taken again (ours): the new lease is the one to keep
        held = _Held(h, lease, ttl_s)
        held.task = asyncio.get_running_loop().create_task(self._keep(held))
        self._held[key] = held

    async def drop(self, h: BoxHandle) -> None:
        """Stop renewing the lease on `h` (before it is released); a renewal in flight ends
        first."""
        await self._stop(_key(h))

    async def drop_agent(self, agent: str) -> None:
        """Stop renewing every lease of `agent` (its lease, and at a move its old path's)."""
        for key in [k for k in self._held if k[0] == agent]:
            await self._stop(key)

    async def close(self) -> None:
        """Stop renewing every lease (the run is over; a lease left on a box then ages)."""
        for key in list(self._held):
            await self._stop(key)

    async def _stop(self, key: tuple[str, str]) -> None:
        held = self._held.pop(key, None)
        if held is None or held.task is None:
            return
        async with held.lock:
            held.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await held.task

    async def _keep(self, held: _Held) -> None:
        while True:
            await self._pause(self.every_s)
            async with held.lock:
                try:
                    async with asyncio.timeout(self.every_s):
                        renewed = await boxops.renew_lease(
                            held.handle, held.lease, now=self.clock.now(), ttl_s=held.ttl_s
                        )
                except (TransportError, TimeoutError):
                    continue  # the box did not answer: try again next period
                if renewed is None:  # released or broken: no longer ours to keep
                    if self._held.get(_key(held.handle)) is held:
                        del self._held[_key(held.handle)]
                    return
                held.lease = renewed
                held.beats += 1


def _key(h: BoxHandle) -> tuple[str, str]:
    return (h.name, str(h.paths.lease_dir))
