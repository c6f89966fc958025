"""A fleet of FakeBoxes, a plan over it and a Driver on a FakeClock, for the driver's unit tests.

Every box starts managed: config `old_bytes(agent)` loaded and stamped by revision
`rev-1`; the plan moves each to `new_bytes(agent)` at `rev-2` (a write and a reload).
Unless a test passes one, there is no gate runner: the driver then gates on the
watchdog only (and notes that the metric gates are not evaluated). That is the
driver's documented `gate_runner=None` mode, right for unit tests of the driver;
test_gates.py runs the real GateRunner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.boxops import BoxHandle
from reconciler.engine.driver import Driver, Options, RunResult, Target
from reconciler.engine.gaterun import GateRunner
from reconciler.journal.base import Journal
from reconciler.model.agent import Agent, Commands
from reconciler.model.fleet import Gate
from reconciler.model.fleet import Rollout as RolloutPolicy
from reconciler.plan import Change, PathChange, Plan, make_plan
from reconciler.render.stamp import make_stamp
from reconciler.rollout.reporter import Recorder
from reconciler.rollout.watchdog import Limits
from reconciler.testing.clock import FakeClock
from reconciler.transport.base import CommandResult
from reconciler.transport.fake import FakeBox, Fault, OpTarget, agent_commands

FLEET_ID = "acme-support"
OLD_REV, NEW_REV = "rev-1", "rev-2"
GATES = (Gate(name="task-errors", metric="error_rate", max_ratio=1.5),)
LIMITS = Limits(max_heartbeat_age_s=30.0, stall_window_s=60.0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def old_bytes(agent: str) -> bytes:
    return f'{{"agent": "{agent}", "prompt": "old"}}\n'.encode()


def new_bytes(agent: str) -> bytes:
    return f'{{"agent": "{agent}", "prompt": "new"}}\n'.encode()


def agent_of(name: str, *, tier: str = "fast", shard: str = "us-east") -> Agent:
    return Agent(
        name=name, tier=tier, shard=shard, host=f"{name}.test", user="agent",
        config_path=f"/srv/{name}/config.json", health_url="http://{host}:8080/health",
        commands=Commands(reload=["agentctl", "reload"], restart=["agentctl", "restart"]),
    )  # fmt: skip


@dataclass
class Fleet:
    """The boxes, their handles, the plan over them and the clock they share."""

    clock: FakeClock
    agents: dict[str, Agent]
    boxes: dict[str, FakeBox]
    plan: Plan
    recorder: Recorder = field(default_factory=Recorder)

    def handle(self, name: str) -> BoxHandle:
        box = self.boxes[name]
        return BoxHandle(self.agents[name], box, box.fetch_health, command_timeout=5.0)

    def targets(self) -> dict[str, Target]:
        return {a: Target(self.handle(a), new_bytes(a)) for a in self.plan.agents}

    def wave(self, index: int) -> tuple[str, ...]:
        return self.plan.waves[index].agents

    def driver(self, *, gate_runner: GateRunner | None = None, journal: Journal | None = None,
               incidents: bool = True, **opts: Any) -> Driver:  # fmt: skip
        """A Driver over the fleet (an incident writer that writes nothing, unless not
        `incidents`); `opts` go to its Options."""
        options = Options(
            rollout_id="r-test", holder="tester@localhost pid 1", revision=NEW_REV,
            fleet_id=FLEET_ID, verify_timeout_s=10.0, watchdog=LIMITS, **opts,
        )  # fmt: skip
        return Driver(
            self.plan, self.targets(), options, clock=self.clock, reporter=self.recorder,
            journal=journal, gate_runner=gate_runner,
            write_incident=(lambda _r, _c: {}) if incidents else None,
        )  # fmt: skip

    async def run(self, **kw: Any) -> RunResult:
        return await self.driver(**kw).run()

    def notes(self, kind: str) -> list[dict[str, Any]]:
        return [f for k, f in self.recorder.notes if k == kind]

    def on_new(self, name: str) -> bool:
        """The box holds, runs and stamps the new config."""
        box = self.boxes[name]
        return box.read(box.config_path) == new_bytes(name) and box.loaded_sha == sha(
            new_bytes(name)
        )

    def on_old(self, name: str) -> bool:
        """The box holds and runs the config it had before the rollout."""
        box = self.boxes[name]
        return box.read(box.config_path) == old_bytes(name) and box.loaded_sha == sha(
            old_bytes(name)
        )


def reload_fails(box: FakeBox, argv: Sequence[str]) -> CommandResult:
    """The agent refuses the new config: a reload of it exits 1 (the old stays loaded)."""
    if argv[-1] == "reload" and box.read(box.config_path) == new_bytes(box.name):
        return CommandResult(1, "", "config rejected: unknown field 'prompt'")
    return agent_commands(box, argv)


def fake_box(agent: Agent, clock: FakeClock, fault: Fault | None = None) -> FakeBox:
    """A managed box: the old config loaded, stamped by rev-1."""
    config = old_bytes(agent.name)
    box = FakeBox(agent.name, config_path=agent.config_path, fault=fault,
                  now=lambda: clock.now().timestamp())  # fmt: skip
    box.put(agent.config_path, config)
    box.loaded_sha = sha(config)
    stamp = make_stamp(
        fleet_id=FLEET_ID, agent=agent.name, revision=OLD_REV, config_sha256=sha(config),
        rollout_id="r-before", outcome="applied", now=clock.now(),
    )  # fmt: skip
    box.put(f"{agent.config_path}.stamp.json", stamp.to_bytes())
    return box


def change_of(agent: Agent, *, restart: bool = False) -> Change:
    """The planning input of one managed box moving from old to new."""
    a = agent.name
    return Change(
        agent=a, tier=agent.tier, shard=agent.shard,
        paths=(PathChange(path=("prompt",), restart_required=restart),),
        desired_sha=sha(new_bytes(a)), live_sha=sha(old_bytes(a)),
        stamp_sha=sha(old_bytes(a)), stamp_revision=OLD_REV,
    )  # fmt: skip


def make_fleet(
    n: int,
    *,
    waves: Sequence[int | str] = (1, 3, "100%"),
    soak_s: float = 10.0,
    budget: int | str = 0,
    faults: Mapping[str, Fault] | None = None,
    gates: Sequence[Gate] = GATES,
    restart: bool = False,
) -> Fleet:
    """`n` managed boxes `agent-00`.., all changing from old to new in `waves`."""
    clock = FakeClock()
    agents = {f"agent-{i:02d}": agent_of(f"agent-{i:02d}") for i in range(n)}
    boxes = {a: fake_box(ag, clock, (faults or {}).get(a)) for a, ag in agents.items()}
    changes = [change_of(ag, restart=restart) for ag in agents.values()]
    plan = make_plan(
        changes, fleet_id=FLEET_ID, target_revision=NEW_REV,
        policy=RolloutPolicy(waves=list(waves), soak_s=soak_s, failure_budget=budget),
        gates=gates,
    )  # fmt: skip
    return Fleet(clock, agents, boxes, plan)


def in_flight_meter(fleet: Fleet) -> tuple[dict[str, int], Callable[[str], Fault]]:
    """A fault hook per box that counts boxes between their lease's take and its release.

    Returns the meter ({"now", "max"}) and a factory of hooks (one per box name).
    """
    meter = {"now": 0, "max": 0}
    holding: set[str] = set()

    def for_box(name: str) -> Fault:
        lease_dir = fleet.agents[name].config_path + ".lease"

        def fault(op: str, target: OpTarget) -> Exception | None:
            if op == "mkdir" and str(target) == lease_dir and name not in holding:
                holding.add(name)
                meter["now"] = len(holding)
                meter["max"] = max(meter["max"], meter["now"])
            elif op in ("rmdir", "rmtree") and str(target) == lease_dir:
                holding.discard(name)
                meter["now"] = len(holding)
            return None

        return fault

    return meter, for_box
