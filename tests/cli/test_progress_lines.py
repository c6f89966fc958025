"""The piped progress (no terminal): the real Driver and GateRunner on FakeBoxes and a
FakeClock, its notes through the CLI's LineReporter into a buffer.

A 4-wave rollout whose second wave waits 10 minutes (fake time) for its gates' samples
prints under 100 lines, none longer than 160 characters, none twice, no Python repr;
a failed box and each restored box get one line each with the reason verbatim.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Mapping, Sequence

from engine.helpers import Fleet, make_fleet, new_bytes

from reconciler.cli.progress import LineReporter
from reconciler.engine.gaterun import GatePolicy, GateRunner
from reconciler.gates import AgentInfo, AgentWindow
from reconciler.metrics.source import Measurement
from reconciler.model.fleet import Gate
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue, Recorder
from reconciler.testing.clock import FakeClock
from reconciler.transport.base import CommandResult
from reconciler.transport.fake import FakeBox, agent_commands

PEERS = tuple(f"peer-{i}" for i in range(6))
GATES = (Gate(name="task-errors", metric="error_rate", max_ratio=1.5, min_samples=200),)
WAIT_S = 600.0  # wave 2's canary gets its samples after 10 minutes


class SlowSamples:
    """A MetricSource: 1000 tasks a window, 1% errors; but the window opened by the second
    wave has only a few tasks until WAIT_S after it opened (the gate stays undecided)."""

    name = "fake-metrics"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.opened = 0

    async def open(self, agents: Sequence[str]) -> object:
        self.opened += 1
        return (self.opened, self.clock.now().timestamp())

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        assert isinstance(mark, tuple)
        n, start = mark
        now = self.clock.now().timestamp()
        slow = n == 2 and now - start < WAIT_S
        tasks = 5.0 if slow else 1000.0
        windows: dict[str, AgentWindow | str] = {
            a: AgentWindow(
                agent=a,
                start=start,
                end=now,
                tasks=tasks,
                errors=tasks / 100,
                tokens_in=0.0,
                tokens_out=0.0,
                cost=0.0,
            )
            for a in agents
        }
        return Measurement(now, windows)

    async def close(self) -> None:
        return None


class Tee(Recorder):
    """Keeps the notes (for the asserts) and passes them to the CLI's piped reporter."""

    def __init__(self, to: LineReporter) -> None:
        super().__init__()
        self.to = to

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        super().note(kind, fields)
        self.to.note(kind, fields)


def runner(fleet: Fleet) -> GateRunner:
    info = {a: AgentInfo(a, "fast", "us-east") for a in (*fleet.agents, *PEERS)}
    policy = GatePolicy(gates=GATES, tier_gates={}, info=info, retries=0,
                        inconclusive_wait_s=900.0, poll_s=2.0)  # fmt: skip
    return GateRunner(SlowSamples(fleet.clock), policy, fleet.clock)


async def piped(fleet: Fleet) -> tuple[list[str], Outcome]:
    buffer = io.StringIO()
    fleet.recorder = Tee(LineReporter(buffer))
    result = await fleet.run(gate_runner=runner(fleet), soak_interval_s=1.0)
    return buffer.getvalue().splitlines(), result.outcome


def assert_compact(lines: list[str]) -> None:
    long = [line for line in lines if len(line) > 160]
    assert not long, long
    twice = sorted({line for line in lines if lines.count(line) > 1})
    assert not twice, twice
    reprs = [line for line in lines if re.search(r"\[\[|\['|\{'|': |None\b", line)]
    assert not reprs, reprs


async def test_a_4_wave_rollout_with_a_10_minute_wait_prints_under_100_lines() -> None:
    fleet = make_fleet(12, waves=(1, 3, "50%", "100%"), soak_s=10.0, gates=GATES)
    lines, outcome = await piped(fleet)
    text = "\n".join(lines)

    assert outcome is Outcome.DONE, text
    assert fleet.clock.elapsed > WAIT_S  # the wait did happen, in fake time
    waiting = fleet.recorder.kinds().count("gates.waiting")
    assert waiting > 250, waiting  # a poll every 2 s for 10 minutes ...
    assert len(lines) < 100, text  # ... yet the whole rollout stays short
    assert_compact(lines)
    for n in range(1, 5):
        assert f"wave.started       wave {n}/4: applying" in text
        assert re.search(rf"gates\.passed +wave {n}/4: 2 of 2 checks passed", text)
    told = [line for line in lines if line.startswith("gates.waiting")]
    assert 5 <= len(told) <= 12, told  # about once a minute of the wait, not every poll
    assert "task-errors waiting: 15 of 200 samples" in told[0], told
    assert re.search(r"task-errors PASS canary 0\.01 baseline 0\.01 threshold 0\.015 "
                     r"samples \d+/\d+: within the threshold", text)  # fmt: skip
    assert lines[-1].startswith("rollout.finished   done (exit 0)")


def _reload_fails_with(reason: str):  # type: ignore[no-untyped-def]
    def handler(box: FakeBox, argv: Sequence[str]) -> CommandResult:
        if argv[-1] == "reload" and box.read(box.config_path) == new_bytes(box.name):
            return CommandResult(1, "", reason)
        return agent_commands(box, argv)

    return handler


async def test_a_failed_box_and_each_restored_box_get_one_line_with_the_reason_verbatim() -> None:
    reason = "config rejected: name must match ^[a-z0-9]{0,62}$ [strict]"
    fleet = make_fleet(12, waves=(1, 3, "50%", "100%"), soak_s=10.0, gates=GATES)
    victim = fleet.wave(2)[0]
    fleet.boxes[victim].handler = _reload_fails_with(reason)
    lines, outcome = await piped(fleet)
    text = "\n".join(lines)

    assert outcome is Outcome.ROLLED_BACK, text
    assert_compact(lines)
    (failed,) = [line for line in lines if line.startswith("box.failed")]
    assert f"wave 3/4 {victim}: failed at reload" in failed
    assert "^[a-z0-9]{0,62}$ [strict]" in failed, failed
    changed: Collection[str] = {a for w in range(3) for a in fleet.wave(w)}
    restored = [line for line in lines if line.startswith("box.restored")]
    assert len(restored) == len(fleet.notes("box.restored")) >= len(changed) - 1, text
    assert sum(1 for line in lines if line.startswith("rollback.started")) == 1, text
    assert len(lines) < 100 + len(restored) + 1
    assert lines[-1].startswith("rollout.finished   rolled-back (exit 3)") or "exit 3" in lines[-1]
