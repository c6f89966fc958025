"""`apply` against a demo fleet in process: a good change, a crash on reload, idempotence."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.engine.clock import SystemClock
from reconciler.engine.session import ApplyRefused, execute, prepare
from reconciler.model.box import parse_stamp
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue, Recorder

from .conftest import box_truth, commit, request, run_apply, three_waves


async def test_good_change_reaches_every_box_and_file_stamp_and_loaded_agree(
    fleet: DemoFleet,
) -> None:
    """The head commit reaches 100%; on every box file sha == stamp sha == loaded sha."""
    result, rec = await run_apply(fleet)
    assert result.outcome is Outcome.DONE, rec.notes
    changed = [n for k, f in rec.notes if k == "box.applied" for n in [f["agent"]]]
    assert changed
    for name in fleet.names:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded


def _counters(fleet: DemoFleet) -> dict[str, dict[str, int]]:
    return {n: b.counters.as_dict() for n, b in fleet.boxes.items()}


async def test_second_apply_makes_no_write_and_no_reload(fleet: DemoFleet) -> None:
    """Once the fleet runs the head commit, apply again writes nothing and reloads nothing."""
    first, _ = await run_apply(fleet)
    assert first.outcome is Outcome.DONE
    before = _counters(fleet)
    again, rec = await run_apply(fleet)
    assert again.outcome is Outcome.DONE
    assert "box.applied" not in rec.kinds()
    after = _counters(fleet)
    for name in fleet.names:
        assert after[name]["writes"] == before[name]["writes"]
        assert after[name]["reloads"] == before[name]["reloads"]
        assert after[name]["restarts"] == before[name]["restarts"]


@pytest.mark.agents(10)
async def test_crash_on_reload_in_wave_two_rolls_back_waves_one_and_two_only(
    fleet: DemoFleet,
) -> None:
    """A crash on reload in wave 2 restores waves 1-2 (verified, stamped); wave 3 is untouched."""
    head = three_waves(fleet.repo)
    p = await prepare(request(fleet))
    assert len(p.plan.waves) == 3
    w1, w2, w3 = (list(w.agents) for w in p.plan.waves)
    fleet.box(w2[0]).fault("crash-on-reload")
    pre = {a: p.plan.box(a).pre_sha for a in p.plan.agents}
    result, rec = await run_apply(fleet, p)
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.exit_code == 3
    restored = [f["agent"] for k, f in rec.notes if k == "box.restored"]
    assert sorted(restored) == sorted(w1 + w2)
    for name in w1 + w2:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded == pre[name]
        stamp = parse_stamp(fleet.box(name).path(fleet.box(name).paths.stamp).read_bytes())
        assert stamp.outcome == "rolled-back"
        # a reload that fails is no verdict (only a failed gate or watchdog is): not blocked
        assert stamp.blocked_revision != head
    for name in w3:
        assert fleet.box(name).counters.writes == 0
        assert fleet.box(name).counters.reloads == 0
        assert box_truth(fleet, name)[0] == pre[name]


@pytest.mark.agents(10)
async def test_rolled_back_revision_is_not_retried_unless_forced(fleet: DemoFleet) -> None:
    """After a verdict (the watchdog finds the canary stalled), apply of the same head is
    refused; --force plans it again."""
    three_waves(fleet.repo)
    p = await prepare(request(fleet))
    fleet.box(p.plan.waves[0].agents[0]).fault("stall")
    result, _ = await run_apply(fleet, p)
    assert result.outcome is Outcome.ROLLED_BACK
    with pytest.raises(ApplyRefused, match="rolled back automatically"):
        await prepare(request(fleet))
    forced = await prepare(request(fleet, force=True))
    await forced.link.close()
    assert not forced.plan.empty


@pytest.mark.agents(10)
async def test_failure_within_a_budget_of_one_restores_that_box_and_finishes(
    fleet: DemoFleet,
) -> None:
    """With failure_budget 1, the one failed box is restored and the rollout reaches the rest."""
    three_waves(fleet.repo)
    commit(fleet.repo, "fleet.yaml", "failure_budget: 0", "failure_budget: 1", "budget 1")
    p = await prepare(request(fleet))
    bad = p.plan.waves[1].agents[0]
    fleet.box(bad).fault("crash-on-reload")
    result, rec = await run_apply(fleet, p)
    assert result.outcome is Outcome.DONE
    assert result.left_behind == (bad,)
    assert [f["agent"] for k, f in rec.notes if k == "box.restored"] == [bad]
    for name in p.plan.agents:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        want = p.plan.box(name).pre_sha if name == bad else p.plan.box(name).target_sha
        assert file_sha == stamp_sha == loaded == want


class FaultDuringSoak(Recorder):
    """Injects a fault on one box at the first soak tick, and clears it once it is seen."""

    def __init__(self, fleet: DemoFleet, box: str, kind: str, value: float | None) -> None:
        super().__init__()
        self.fleet, self.box, self.kind, self.value = fleet, box, kind, value

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        super().note(kind, fields)
        if kind == "soak.tick" and self.kinds().count("soak.tick") == 1:
            self.fleet.box(self.box).fault(self.kind, self.value)
        if kind == "soak.problem":
            self.fleet.box(self.box).clear()


@pytest.mark.parametrize(("kind", "value", "verdict"), [("stall", None, "stalled"),
                                                        ("flap", 0.0, "dead")])  # fmt: skip
async def test_stall_or_flap_inside_the_soak_is_detected_and_rolled_back(
    fleet: DemoFleet, kind: str, value: float | None, verdict: str
) -> None:
    """A box that stalls or crashes during the soak fails the wave; everything is restored."""
    p = await prepare(request(fleet, soak_s=2.0))
    victim = p.plan.waves[0].agents[0]
    rec = FaultDuringSoak(fleet, victim, kind, value)
    try:
        result = await execute(p, clock=SystemClock(), reporter=rec)
    finally:
        await p.link.close()
    problems = [f for k, f in rec.notes if k == "soak.problem"]
    assert problems and problems[0]["agent"] == victim and problems[0]["verdict"] == verdict
    assert result.outcome is Outcome.ROLLED_BACK
    assert box_truth(fleet, victim)[0] == p.plan.box(victim).pre_sha


async def test_dirty_work_tree_is_refused(fleet: DemoFleet) -> None:
    """Uncommitted config changes stop apply before anything is read from the boxes."""
    tier = fleet.repo / "agents" / "tier-smart.yaml"
    tier.write_text(tier.read_text() + "\n# edited\n", encoding="utf-8")
    with pytest.raises(ApplyRefused, match="--allow-dirty"):
        await prepare(request(fleet))


async def test_dirty_tree_allowed_stamps_sha_plus_dirty(fleet: DemoFleet) -> None:
    """With --allow-dirty the stamps record sha+dirty-<hash>."""
    tier = fleet.repo / "agents" / "tier-smart.yaml"
    tier.write_text(tier.read_text() + "\n# edited\n", encoding="utf-8")
    result, _ = await run_apply(fleet, allow_dirty=True)
    assert result.outcome is Outcome.DONE
    name = next(iter(result.state.spec.steps))
    stamp = fleet.box(name).path(fleet.box(name).paths.stamp).read_text()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=fleet.repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert f"{head}+dirty-" in stamp


async def test_missing_secret_value_stops_before_any_write(fleet: DemoFleet) -> None:
    """A secret reference without a value stops apply, naming it, before any box is written."""
    fleet.dir.secret_file("kb_token").unlink()
    p = await prepare(request(fleet, env={}))
    try:
        with pytest.raises(ApplyRefused, match="kb_token"):
            await execute(p, clock=SystemClock(), reporter=Recorder())
    finally:
        await p.link.close()
    assert all(c["writes"] == 0 and c["reloads"] == 0 for c in _counters(fleet).values())
