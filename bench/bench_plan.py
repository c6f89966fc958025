"""Planning and journal replay at fleet scale: plan 1,000 and 10,000 changing agents; replay a
1,000-box rollout from the SQLite journal and fold it back into the machine's state.

Prints one JSON line each (what, n, seconds, and a few counts); asserts no time.

Usage: .venv/bin/python bench/bench_plan.py
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections import deque
from pathlib import Path

from reconciler.journal import Holder, open_state
from reconciler.model.fleet import Gate, Rollout
from reconciler.plan import Change, PathChange, Plan, make_plan, verify_plan
from reconciler.rollout import (
    ApplyBox,
    BoxApplied,
    Command,
    Event,
    GatesPassed,
    Preflight,
    PreflightPassed,
    RunGates,
    Soak,
    SoakOver,
    Started,
    Watch,
    WatchdogPassed,
    fold,
    step,
)
from reconciler.rollout import Rollout as RolloutState

SHARDS = ("us-east", "eu-west", "ap-south", "sa-east")
TIERS = ("fast", "smart", "batch")
GATES = [Gate(name="task-errors", metric="error_rate", max_ratio=1.5)]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def changes(n: int) -> list[Change]:
    new = _sha("new")
    return [
        Change(
            agent=f"agent-{i:05d}",
            tier=TIERS[i % 3],
            shard=SHARDS[(i // 3) % 4],
            paths=(
                PathChange(path=("prompt",)),
                PathChange(path=("max_tokens",), cost_impacting=True),
            ),
            desired_sha=new,
            live_sha=_sha(f"old-{i}"),
            stamp_sha=_sha(f"old-{i}"),
            stamp_revision="rev-1",
        )
        for i in range(n)
    ]


def plan_for(items: list[Change]) -> Plan:
    return make_plan(
        items, fleet_id="bench", target_revision="rev-2", policy=Rollout(), gates=GATES
    )


def emit(what: str, n: int, seconds: float, **extra: object) -> None:
    print(json.dumps({"what": what, "n": n, "seconds": round(seconds, 4), **extra}))


def bench_plan(n: int) -> None:
    items = changes(n)
    t0 = time.perf_counter()
    plan = plan_for(items)
    t1 = time.perf_counter()
    verify_plan(plan, items)
    t2 = time.perf_counter()
    emit("plan", n, t1 - t0, waves=[len(w.agents) for w in plan.waves])
    emit("verify_plan", n, t2 - t1)


def answer(cmd: Command) -> list[Event]:
    match cmd:
        case Preflight():
            return [PreflightPassed()]
        case ApplyBox(agent=agent):
            return [BoxApplied(agent)]
        case Watch(agents=agents):
            return [WatchdogPassed(a) for a in agents]
        case Soak(wave=wave):
            return [SoakOver(wave)]
        case RunGates(wave=wave):
            return [GatesPassed(wave)]
    return []


def bench_replay(n: int) -> None:
    plan = plan_for(changes(n))
    with tempfile.TemporaryDirectory() as tmp:
        state = open_state(Path(tmp))
        rid = state.journal.begin_rollout(plan, {}, Holder.here())
        machine = RolloutState.start(plan)
        queue: deque[Event] = deque([Started(parallel=64)])
        t0 = time.perf_counter()
        while queue:
            ev = queue.popleft()
            state.journal.record_event(rid, ev)
            machine, cmds = step(machine, ev)
            for cmd in cmds:
                queue.extend(answer(cmd))
        t1 = time.perf_counter()
        record = state.journal.rollout(rid)
        events = state.journal.replay(rid)
        t2 = time.perf_counter()
        rebuilt = fold(RolloutState.start(record.plan, record.pre_shas), events)
        t3 = time.perf_counter()
        assert rebuilt == machine
        state.close()
    emit("journal record + step (live run)", n, t1 - t0, events=len(events))
    emit("journal replay (read + decode)", n, t2 - t1, events=len(events))
    emit("fold replayed events", n, t3 - t2, events=len(events), phase=str(rebuilt.phase))


def bench_fold(n: int) -> None:
    """A whole n-box rollout stepped in memory (no journal): the machine's own cost."""
    plan = plan_for(changes(n))
    machine = RolloutState.start(plan)
    queue: deque[Event] = deque([Started(parallel=64)])
    count = 0
    t0 = time.perf_counter()
    while queue:
        machine, cmds = step(machine, queue.popleft())
        count += 1
        for cmd in cmds:
            queue.extend(answer(cmd))
    emit("step a whole rollout (no journal)", n, time.perf_counter() - t0, events=count)


if __name__ == "__main__":
    bench_plan(1_000)
    bench_plan(10_000)
    bench_replay(1_000)
    bench_fold(10_000)
