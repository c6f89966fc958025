"""The coordinator's Driver with its box operations run elsewhere (engine/remote.py).

A unit test of the driver, on FakeBoxes and a FakeClock: the `RemoteBoxes` here runs
each ApplyBox/RestoreBox through a second, serving Driver over the same boxes (what a
worker process does, in process); the real queue over PostgreSQL is tested in
tests/journal/test_pgwork.py and the whole thing on the demo fleet in
tests/journal/test_workers_journey.py and test_chaos.py. No gate runner: the driver
gates on the watchdog only (its documented `gate_runner=None` mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.engine.driver import Driver, Options
from reconciler.engine.remote import BoxDone, Here, Note
from reconciler.model.box import parse_stamp
from reconciler.rollout.commands import ApplyBox, RestoreBox
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import Recorder

from .helpers import LIMITS, NEW_REV, Fleet, make_fleet, reload_fails

WORKER = "worker@box pid 7 worker"


@dataclass
class InProcess:
    """A RemoteBoxes whose 'worker' is a serving Driver over the same fleet."""

    fleet: Fleet
    started: list[str] = field(default_factory=list)
    stopped: bool = False
    restores: list[tuple[str, str | None]] = field(default_factory=list)
    worker: Driver | None = None

    def start(self, options: Options, note: Note, here: Here) -> None:
        self.started.append(options.rollout_id)
        opts = Options(
            rollout_id=options.rollout_id, holder=WORKER, revision=options.revision,
            fleet_id=options.fleet_id, verify_timeout_s=10.0, watchdog=LIMITS,
        )  # fmt: skip
        f = self.fleet
        self.worker = Driver(f.plan, f.targets(), opts, clock=f.clock, reporter=Recorder(),
                             serving=True)  # fmt: skip

    async def apply(self, cmd: ApplyBox) -> BoxDone:
        assert self.worker is not None
        ev = await self.worker.apply_here(cmd)
        return BoxDone(cmd.agent, ev, WORKER, cmd.wave, cmd.pre_sha,
                       self.worker.kept_secrets(cmd.agent))  # fmt: skip

    async def restore(self, cmd: RestoreBox, verdict_on: str | None) -> BoxDone:
        assert self.worker is not None
        self.restores.append((cmd.agent, verdict_on))
        ev = await self.worker.restore_here(cmd, verdict_on)
        return BoxDone(cmd.agent, ev, WORKER, 0, cmd.pre_sha)

    async def stop(self) -> None:
        self.stopped = True
        if self.worker is not None:
            await self.worker.keeper.close()


def _coordinator(fleet: Fleet, remote: InProcess, **opts: object) -> Driver:
    options = Options(
        rollout_id="r-test", holder="coordinator@localhost pid 1", revision=NEW_REV,
        fleet_id="acme-support", verify_timeout_s=10.0, watchdog=LIMITS, **opts,  # type: ignore[arg-type]
    )  # fmt: skip
    return Driver(fleet.plan, fleet.targets(), options, clock=fleet.clock,
                  reporter=fleet.recorder, remote=remote)  # fmt: skip


async def test_every_box_is_applied_by_the_worker_and_told_by_the_coordinator() -> None:
    fleet = make_fleet(6, waves=(1, "100%"))
    remote = InProcess(fleet)
    result = await _coordinator(fleet, remote).run()
    assert result.outcome is Outcome.DONE
    assert remote.started == ["r-test"] and remote.stopped
    applied = fleet.notes("box.applied")
    assert sorted(n["agent"] for n in applied) == sorted(fleet.boxes)
    assert {n["worker"] for n in applied} == {WORKER}
    assert all(fleet.on_new(a) for a in fleet.boxes)
    for name, box in fleet.boxes.items():  # the worker stamped it, for the rollout
        stamp = parse_stamp(box.read(f"{fleet.agents[name].config_path}.stamp.json") or b"")
        assert stamp.rollout_id == "r-test" and stamp.revision == NEW_REV


async def test_a_failed_box_is_rolled_back_through_the_worker() -> None:
    fleet = make_fleet(6, waves=(1, 2, "100%"))
    w1, w2 = fleet.wave(0), fleet.wave(1)
    fleet.boxes[w2[0]].handler = reload_fails
    remote = InProcess(fleet)
    result = await _coordinator(fleet, remote, parallel=1).run()
    assert result.outcome is Outcome.ROLLED_BACK
    failed = fleet.notes("box.failed")
    assert [(n["agent"], n["step"], n["worker"]) for n in failed] == [(w2[0], "reload", WORKER)]
    restored = {a for a, _ in remote.restores}
    assert restored == {*w1, w2[0]}
    # a box that fails is no verdict on the revision (a gate's or the watchdog's is)
    assert {v for _, v in remote.restores} == {None}
    for name in restored:
        assert fleet.on_old(name), name
        stamp = parse_stamp(fleet.boxes[name].read(f"{fleet.agents[name].config_path}"
                                                   ".stamp.json") or b"")  # fmt: skip
        assert stamp.outcome == "rolled-back" and stamp.blocked_revision is None
