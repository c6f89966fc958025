"""The gates are real in the driver: a GateRunner (the real one, over a fake metric source)
is opened at each wave's soak and judges each wave; a wave whose canary errs more than
its peers fails its gate and the rollout rolls back with the verdict on the boxes.

The other driver tests pass no gate runner: the driver's `gate_runner=None` mode, the
watchdog only. The last test here pins what that mode says, so it is never silent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from reconciler.engine.gaterun import GatePolicy, GateRunner
from reconciler.gates import AgentInfo, AgentWindow
from reconciler.metrics.source import Measurement
from reconciler.model.box import parse_stamp
from reconciler.rollout.phases import Outcome
from reconciler.testing.clock import FakeClock

from .helpers import GATES, NEW_REV, Fleet, make_fleet

PEERS = tuple(f"peer-{i}" for i in range(6))  # unchanged agents of the same tier and shard


class Metrics:
    """A MetricSource: 1000 tasks per agent per window; agents in `bad` err 30%, others 1%."""

    name = "fake-metrics"

    def __init__(self, clock: FakeClock, bad: Collection[str] = ()) -> None:
        self.clock, self.bad = clock, set(bad)
        self.opened = 0

    async def open(self, agents: Sequence[str]) -> object:
        self.opened += 1
        return self.clock.now().timestamp()

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        assert isinstance(mark, float)
        now = self.clock.now().timestamp()
        windows: dict[str, AgentWindow | str] = {a: self.window(a, mark, now) for a in agents}
        return Measurement(now, windows)

    def window(self, agent: str, start: float, end: float) -> AgentWindow:
        errors = 300.0 if agent in self.bad else 10.0
        return AgentWindow(agent=agent, start=start, end=end, tasks=1000.0, errors=errors,
                           tokens_in=0.0, tokens_out=0.0, cost=0.0)  # fmt: skip

    async def close(self) -> None:
        return None


def runner(fleet: Fleet, source: Metrics) -> GateRunner:
    info = {a: AgentInfo(a, "fast", "us-east") for a in (*fleet.agents, *PEERS)}
    policy = GatePolicy(gates=GATES, tier_gates={}, info=info, retries=0,
                        inconclusive_wait_s=0.0, poll_s=1.0)  # fmt: skip
    return GateRunner(source, policy, fleet.clock)


async def test_healthy_waves_pass_the_metric_gates() -> None:
    """Canary error rate like its peers: every wave's `task-errors` gate passes, measured."""
    fleet = make_fleet(4, waves=(1, "100%"))
    source = Metrics(fleet.clock)
    gates = runner(fleet, source)
    result = await fleet.run(gate_runner=gates)

    assert result.outcome is Outcome.DONE
    assert source.opened == 2
    assert gates.queries == 2
    for passed in fleet.notes("gates.passed"):
        names = [f["gate"] for f in passed["figures"]]  # type: ignore[index,union-attr]
        assert names == ["watchdog", "task-errors"]
    assert not [n for n in fleet.notes("warning") if "not evaluated" in str(n["message"])]


async def test_a_wave_whose_canary_errs_fails_its_gate_and_rolls_back() -> None:
    """Wave 2's boxes err 30% against their peers' 1%: the gate fails (the watchdog is
    happy), the rollout rolls back and every changed box carries the blocked revision."""
    fleet = make_fleet(4, waves=(1, "100%"))
    source = Metrics(fleet.clock, bad=fleet.wave(1))
    result = await fleet.run(gate_runner=runner(fleet, source))

    assert result.outcome is Outcome.ROLLED_BACK
    (failed,) = fleet.notes("gates.failed")
    assert failed["wave"] == 2
    figures = {f["gate"]: f for f in failed["figures"]}  # type: ignore[index,union-attr]
    assert figures["watchdog"]["ok"] is True  # type: ignore[index]
    assert figures["task-errors"]["outcome"] == "fail"  # type: ignore[index]
    assert "gates failed in wave 2" in str(fleet.notes("rollback.started")[-1]["trigger"])
    for name, box in fleet.boxes.items():
        assert fleet.on_old(name)
        stamp = parse_stamp(box.read(f"{fleet.agents[name].config_path}.stamp.json") or b"")
        assert stamp.blocked_revision == NEW_REV


async def test_without_a_gate_runner_the_watchdog_alone_gates_and_says_so() -> None:
    """`gate_runner=None` (the other driver tests): the watchdog is each wave's only figure
    and a warning names the gates left unevaluated, once per wave."""
    fleet = make_fleet(2, waves=(1, "100%"))
    result = await fleet.run()

    assert result.outcome is Outcome.DONE
    for passed in fleet.notes("gates.passed"):
        assert [f["gate"] for f in passed["figures"]] == ["watchdog"]  # type: ignore[index,union-attr]
    warnings = [str(n["message"]) for n in fleet.notes("warning")]
    assert warnings == ["gates task-errors are not evaluated (metric gates are off); the "
                        "watchdog is the gate"] * 2  # fmt: skip
