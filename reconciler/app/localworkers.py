"""The worker processes `reconcile apply --workers N` starts on its own machine, and watches.

Each is `reconcile worker --rollout ID` in a process of its own (its own CPU, its own
SSH connections), logging to STATE_DIR/workers/ID-K.log. One that dies while the
rollout runs is started again (twice at most per slot; its boxes are claimed again by
the others once its claims expire, and the coordinator runs what nobody takes); so is one
that left the rollout before it was over (it judged the coordinator gone). When the
rollout is over the workers leave it by themselves; `stop` waits for them, then ends any
still running, and returns the JSON line each printed (its CPU seconds and boxes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from reconciler.journal.base import Holder
from reconciler.journal.db import private_dir
from reconciler.rollout.reporter import JsonValue

RESTARTS = 2  # per worker slot, while the rollout runs
STOP_WAIT_S = 20.0  # after the rollout: how long workers may take to leave it


@dataclass(eq=False)
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    out: Path | None = None
    files: list[IO[bytes]] = field(default_factory=list)
    restarts: int = 0
    lines: list[dict[str, JsonValue]] = field(default_factory=list)


class LocalWorkers:
    """N worker processes for one rollout on this machine (see the module docstring)."""

    def __init__(
        self, count: int, *, url: str, repo: Path, logs: Path, tell: Callable[[str], None],
        over: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        self.over = over  # the rollout is over (workers that leave now are done)
        self.count = count
        self.url = url
        self.repo = repo
        self.logs = logs
        self.tell = tell
        self.rollout_id = ""
        self._slots = [_Slot(i + 1) for i in range(count)]
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._started: list[int] = []  # every worker pid started, restarts and the dead too

    def start(self, rollout_id: str) -> None:
        """Start the workers for `rollout_id` (announced in the shared state already)."""
        self.rollout_id = rollout_id
        private_dir(self.logs)
        for slot in self._slots:
            self._spawn(slot)
        self.tell(f"{self.count} worker process(es) started; logs in {self.logs}")
        self._watch = asyncio.ensure_future(self._supervise())

    def _spawn(self, slot: _Slot) -> None:
        base = self.logs / f"{self.rollout_id}-{slot.index}"
        if slot.restarts:
            base = base.with_name(f"{base.name}-r{slot.restarts}")
        err = base.with_suffix(".log").open("wb")
        out = base.with_suffix(".out").open("wb")
        slot.files += [err, out]
        slot.out = base.with_suffix(".out")
        argv = [sys.executable, "-m", "reconciler", "worker", "--state", self.url,
                "--repo", str(self.repo), "--rollout", self.rollout_id]  # fmt: skip
        slot.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(os.environ),
            start_new_session=True,  # the operator's Ctrl-C goes to the coordinator only
        )  # fmt: skip
        self._started.append(slot.proc.pid)

    def names(self) -> set[str]:
        """The name each worker started here gives itself (app/worker.py), a dead one too."""
        me = Holder.here()
        return {me.worker_name(pid) for pid in self._started}

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self._slots if s.proc is not None and s.proc.poll() is None]

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.5)
            for slot in self._slots:
                if self._stopping or slot.proc is None or slot.proc.poll() is None:
                    continue
                code = slot.proc.returncode
                self._collect(slot)
                if self.over():
                    continue
                if code == 0:  # it left a rollout that is not over: it thought us gone
                    code = "0 before the rollout ended"
                if slot.restarts >= RESTARTS:
                    self.tell(f"worker {slot.index} exited with {code} again; not restarted "
                              "(the others and the coordinator take its boxes)")  # fmt: skip
                    slot.proc = None
                    continue
                slot.restarts += 1
                self.tell(f"worker {slot.index} exited with {code}; started again "
                          f"({slot.restarts}/{RESTARTS})")  # fmt: skip
                self._spawn(slot)

    def _collect(self, slot: _Slot) -> None:
        if slot.out is None or not slot.out.exists():
            return
        for line in slot.out.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and "worker" in data:
                    slot.lines.append(data)
        slot.out = None

    async def stop(self) -> list[dict[str, JsonValue]]:
        """Wait for the workers to leave the finished rollout (ending stragglers), and
        return each one's JSON line."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT_S
        for slot in self._slots:
            proc = slot.proc
            if proc is None:
                continue
            while proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.1)
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 5.0)
                except TimeoutError:
                    proc.kill()
                    await loop.run_in_executor(None, proc.wait)
            self._collect(slot)
        for slot in self._slots:
            for f in slot.files:
                f.close()
        return [line for slot in self._slots for line in slot.lines]
