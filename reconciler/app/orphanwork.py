"""Before a cut-short rollout is settled: the box operations its workers still run end first.

A coordinator killed mid-rollout leaves its workers finishing the boxes they hold (they
take no new ones once it is gone). Those boxes' leases belong to the rollout being
settled, so `resume` would take them over at once, while a worker may still be writing.
So the settling run, holding the fleet lock (the dead coordinator's lock was freed with
its database session), first marks the dead coordinators done (their queued work is
dropped; no worker claims more), then waits until no live claim is left: each worker
finishes its box and records it, or, dead too, its claim expires within CLAIM_TTL_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from reconciler.engine.workers import CLAIM_TTL_S
from reconciler.journal.pgwork import WorkQueue

POLL_S = 0.5


async def let_workers_finish(
    url: str, fleet_id: str, *, wait_s: float, tell: Callable[[str], None]
) -> list[str]:
    """Retire the fleet's dead coordinators and wait for their workers' boxes (at most
    `wait_s` plus a claim's expiry); the rollouts that had any."""
    queue = WorkQueue(url)
    try:
        gone = queue.abandon(fleet_id)
        deadline = time.monotonic() + wait_s + CLAIM_TTL_S
        told = False
        while gone:
            held = [c for rid in gone for c in queue.claimed(rid)]
            if not held:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(f"{a} ({w})" for a, w, _ in held[:5])
                tell(f"workers still hold {len(held)} box(es) of the cut-short rollout after "
                     f"{wait_s:g}s: {names}; settling anyway")  # fmt: skip
                break
            if not told:
                tell(f"waiting for {len(held)} box operation(s) the cut-short rollout's workers "
                     f"still run (at most {left:.0f}s)")  # fmt: skip
                told = True
            await asyncio.sleep(POLL_S)
        return gone
    finally:
        queue.close()
