"""Incident paths end to end: a rollout against the demo fleet while its network misbehaves.

The product's own `prepare` + `execute` (the code `reconcile apply` runs), a demo
fleet in the test's event loop, and the demo's faults fired at the first soak
tick, when no box operation is in flight. Gates and watchdog stay on; the soak is cut to
0.5 s (ticks of 0.1 s) only so a fault lands in it quickly: the network paths are under
test here, not the soak's length.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from reconciler.demo import DemoFleet, FaultKind
from reconciler.engine.clock import SystemClock
from reconciler.engine.session import Request, execute, prepare
from reconciler.model.box import parse_stamp
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue, Recorder
from reconciler.rollout.watchdog import Limits


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    """Four demo boxes (three of tier fast change at the head), with the demo repo's gates."""
    async with DemoFleet.start(tmp_path / "demo", 4, tick_s=0.1, rate=20.0) as f:
        yield f


def commit(repo: Path, rel: str, old: str, new: str) -> None:
    """Edit one file of the demo repo and commit it."""
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", f"test: {rel}"], cwd=repo, check=True)


Waves = list[list[str]]


class Trigger(Recorder):
    """Runs `act(waves)` once, at the rollout's first note of kind `on`."""

    def __init__(self, on: str, act: Callable[[Waves], None], waves: Waves) -> None:
        super().__init__()
        self._on = on
        self._act: Callable[[Waves], None] | None = act
        self.waves = waves

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        super().note(kind, fields)
        if kind == self._on and self._act is not None:
            act, self._act = self._act, None
            act(self.waves)

    def reasons(self) -> dict[str, str]:
        return {str(f["agent"]): str(f["reason"]) for k, f in self.notes if k == "box.failed"}


async def run(
    fleet: DemoFleet, act: Callable[[Waves], None], on: str = "soak.tick"
) -> tuple[Outcome, Trigger]:
    """Apply the head in waves [1, 100%]; `act(waves)` at the first `on` note (a soak tick:
    no box operation in flight)."""
    commit(fleet.repo, "fleet.yaml", "waves: [1, 5, 25%, 100%]", "waves: [1, 100%]")
    p = await prepare(
        Request(
            repo=fleet.repo, soak_s=0.5, soak_interval_s=0.1,
            watchdog=Limits(max_heartbeat_age_s=5.0, stall_window_s=0.6),
        )
    )  # fmt: skip
    rec = Trigger(on, act, [list(w.agents) for w in p.plan.waves])
    try:
        result = await execute(p, clock=SystemClock(), reporter=rec)
    finally:
        await p.link.close()
    return result.outcome, rec


def truth(fleet: DemoFleet, name: str) -> tuple[str, str, str | None]:
    """(file sha, stamp sha, loaded sha) of one box."""
    box = fleet.box(name)
    data = box.path(box.paths.config).read_bytes()
    stamp = parse_stamp(box.path(box.paths.stamp).read_bytes())
    return hashlib.sha256(data).hexdigest(), stamp.config_sha256, box.agent.loaded_sha


async def test_connection_reset_during_the_soak_does_not_stop_the_rollout(
    fleet: DemoFleet,
) -> None:
    """Every box's SSH connection resets mid-soak: the next wave reconnects and the change lands."""

    def reset_all(waves: Waves) -> None:
        for box in fleet.boxes.values():
            box.fault(FaultKind.CONNECTION_RESET)

    before = {n: truth(fleet, n)[0] for n in fleet.names}
    outcome, rec = await run(fleet, reset_all)
    assert outcome is Outcome.DONE, rec.reasons()
    waves = rec.waves
    assert len(waves) == 2 and "soak.tick" in rec.kinds()
    assert sum(b.counters.connection_resets for b in fleet.boxes.values()) >= len(fleet.names)
    for name in [a for w in waves for a in w]:
        file_sha, stamp_sha, loaded = truth(fleet, name)
        assert file_sha == stamp_sha == loaded != before[name]
    for box in fleet.boxes.values():  # the first connection, and one after the reset
        assert box.counters.ssh_connections <= 2, box.counters


async def test_reset_and_changed_host_key_refuse_that_box_untouched(fleet: DemoFleet) -> None:
    """A wave-2 box re-keyed and reset mid-soak: refused with "host key changed", never written."""
    seen: dict[str, tuple[bytes, int]] = {}

    def rekey_and_reset(waves: Waves) -> None:
        box = fleet.box(waves[1][0])
        seen[box.name] = (box.path(box.paths.config).read_bytes(), box.counters.writes)
        box.fault(FaultKind.HOST_KEY_CHANGED)
        box.fault(FaultKind.CONNECTION_RESET)

    outcome, rec = await run(fleet, rekey_and_reset)
    [(victim, before)] = seen.items()
    box = fleet.box(victim)
    assert "host key changed" in rec.reasons()[victim]
    assert outcome is Outcome.ROLLED_BACK  # cleanly: the refused box never changed
    assert (box.path(box.paths.config).read_bytes(), box.counters.writes) == before


async def slow_reload_rollout(fleet: DemoFleet) -> tuple[Outcome, Trigger, str]:
    """Roll out with every reload slower (3 s) than the 1 s command timeout; the canary's name."""
    commit(fleet.repo, "fleet.yaml", "command_timeout_s: 30", "command_timeout_s: 1")
    for box in fleet.boxes.values():
        box.fault(FaultKind.SLOW_RELOAD, 3)

    def back_to_normal(waves: Waves) -> None:  # so that the rollback's own reload is quick
        for box in fleet.boxes.values():
            box.clear(FaultKind.SLOW_RELOAD)

    outcome, rec = await run(fleet, back_to_normal, on="box.failed")
    [canary] = rec.waves[0]
    return outcome, rec, canary


async def test_reload_slower_than_the_command_timeout_fails_that_box_clearly(
    fleet: DemoFleet,
) -> None:
    """The canary's reload outlives the command timeout: failed, naming box, command and limit."""
    outcome, rec, canary = await slow_reload_rollout(fleet)
    reason = rec.reasons()[canary]
    assert "reload did not finish within 1s" in reason, reason
    assert outcome is Outcome.ROLLED_BACK
    assert fleet.box(canary).counters.commands_abandoned == 1  # stopped, not left running


async def test_box_whose_reload_timed_out_is_restored_by_the_rollback(fleet: DemoFleet) -> None:
    """After the rollback the canary's file, stamp and loaded config agree again."""
    outcome, rec, canary = await slow_reload_rollout(fleet)
    assert outcome is Outcome.ROLLED_BACK
    steps = {str(f["agent"]): f["step"] for k, f in rec.notes if k == "box.failed"}
    assert steps[canary] == "reload"
    file_sha, stamp_sha, loaded = truth(fleet, canary)
    assert file_sha == stamp_sha == loaded
