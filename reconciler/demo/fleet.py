"""A demo fleet in the current event loop, for tests; and the box group both modes share.

```python
async with DemoFleet.start(tmp_path, agents=5) as fleet:
    box = fleet.box("us-east-fast-001")
    box.fault("error-rate", 0.3)
    box.work(60)                      # a minute of tasks, now
    assert box.counters.reloads == 0
```

`BoxGroup` runs many boxes in one event loop with a single ticker (one loop
over the boxes per tick, not a coroutine per box or per task); the worker
processes of `reconcile demo up` each run one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from reconciler.demo.box import DemoBox
from reconciler.demo.build import Prepared, prepare, write_state
from reconciler.demo.layout import DemoDir


class BoxGroup:
    """Boxes sharing one event loop and one ticker."""

    def __init__(self, boxes: Iterable[DemoBox], *, tick_s: float = 1.0) -> None:
        self.boxes = {box.name: box for box in boxes}
        self.tick_s = tick_s
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start every box (listening already: their sockets were bound beforehand)."""
        started: list[DemoBox] = []
        try:
            for box in self.boxes.values():
                await box.start()
                started.append(box)
        except BaseException:
            await asyncio.gather(*(b.stop() for b in started), return_exceptions=True)
            raise
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            for box in self.boxes.values():
                box.agent.tick()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await asyncio.gather(*(box.stop() for box in self.boxes.values()))


class DemoFleet:
    """A demo fleet running in this process's event loop."""

    def __init__(self, prepared: Prepared, group: BoxGroup) -> None:
        self.prepared = prepared
        self.group = group

    @classmethod
    def start(
        cls,
        root: Path,
        agents: int = 3,
        *,
        rate: float = 2.0,
        base_error_rate: float = 0.01,
        tick_s: float = 1.0,
        seed: int = 0,
    ) -> contextlib.AbstractAsyncContextManager[DemoFleet]:
        """Set up DIR=`root` and run its boxes until the context exits."""
        return _running(
            root, agents, rate=rate, base_error_rate=base_error_rate, tick_s=tick_s, seed=seed
        )

    @property
    def dir(self) -> DemoDir:
        return self.prepared.dir

    @property
    def repo(self) -> Path:
        return self.prepared.dir.repo

    @property
    def first_commit(self) -> str:
        return self.prepared.first

    @property
    def head_commit(self) -> str:
        return self.prepared.head

    @property
    def names(self) -> list[str]:
        return list(self.group.boxes)

    @property
    def boxes(self) -> dict[str, DemoBox]:
        return self.group.boxes

    def box(self, name: str) -> DemoBox:
        try:
            return self.group.boxes[name]
        except KeyError:
            raise KeyError(f"no demo box {name!r}; boxes: {', '.join(self.names)}") from None

    def tier(self, tier: str) -> list[DemoBox]:
        """The boxes of the agents of one tier."""
        return [self.group.boxes[a.name] for a in self.prepared.agents if a.tier == tier]

    def ssh_options(self, name: str) -> dict[str, Any]:
        """Keyword arguments for `asyncssh.connect` to reach box `name` as the product does."""
        return {
            "host": "127.0.0.1",
            "port": self.box(name).ssh_port,
            "username": self.prepared.user,
            "client_keys": [str(self.dir.key)],
            "known_hosts": str(self.dir.known_hosts),
        }


@contextlib.asynccontextmanager
async def _running(
    root: Path, agents: int, *, rate: float, base_error_rate: float, tick_s: float, seed: int
) -> AsyncIterator[DemoFleet]:
    prepared = prepare(root, agents, rate=rate, base_error_rate=base_error_rate, seed=seed)
    try:
        boxes = [DemoBox(spec, *prepared.sockets[spec.name]) for spec in prepared.specs]
    except BaseException:
        prepared.close_sockets()
        raise
    group = BoxGroup(boxes, tick_s=tick_s)
    try:
        await group.start()
    except BaseException:
        prepared.close_sockets()
        raise
    write_state(prepared, [{"pid": None, "in_process": True, "agents": list(group.boxes)}])
    try:
        yield DemoFleet(prepared, group)
    finally:
        await group.stop()
        prepared.close_sockets()
