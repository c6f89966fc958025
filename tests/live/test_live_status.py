"""`reconcile status` as a process against an in-process demo fleet: red, green, grouping."""

from __future__ import annotations

from dataclasses import replace

from reconciler.demo.fleet import DemoFleet
from reconciler.report.status import StatusReport

from .conftest import cli


def _idle(fleet: DemoFleet, name: str) -> None:
    """No new tasks and an empty queue: the agent is idle (alive, nothing to do)."""
    agent = fleet.box(name).agent
    agent.rate = 0.0
    agent.backlog = 0
    agent.metrics.queue.set(0)


def _error_free(fleet: DemoFleet, name: str) -> None:
    """Busy without failures: the demo's 1% random task errors can reach 3 of 30 tasks in
    a 1 s window (yellow by the 99% bound) once in a few hundred runs; this test is about
    stalled, unreachable and idle agents, not about that bound."""
    agent = fleet.box(name).agent
    assert agent.behaviour is not None, f"{name} has loaded no config"
    agent.behaviour = replace(agent.behaviour, error_rate=0.0)


async def test_stalled_and_unreachable_red_idle_green_grouped(fleet: DemoFleet) -> None:
    """Stalled and unreachable agents are red with reasons; an idle one is green; exit 1."""
    stalled, idle, unreachable, busy = fleet.names
    fleet.box(stalled).fault("stall")
    _idle(fleet, idle)
    fleet.box(unreachable).fault("ssh-refused")
    _error_free(fleet, busy)
    run = await cli(
        "status", "--repo", str(fleet.repo), "--window", "1", "--format", "json", "--all"
    )
    assert run.code == 1, run.err  # some agent is red
    report = StatusReport.model_validate_json(run.out)
    rows = {a.agent: a for a in report.agents}
    assert rows[stalled].color == "red"
    assert any(r.startswith("stalled:") for r in rows[stalled].reasons)
    assert rows[idle].color == "green", rows[idle].reasons
    assert rows[idle].queue_depth == 0
    assert rows[unreachable].color == "red"
    assert any(r.startswith("unreachable:") for r in rows[unreachable].reasons)
    assert rows[busy].color == "green", rows[busy].reasons
    assert report.worst == "red"
    assert report.totals == {"green": 2, "yellow": 0, "red": 2}
    groups = {(g.shard, g.tier): (g.green, g.yellow, g.red) for g in report.groups}
    assert sum(sum(v) for v in groups.values()) == 4
    expected = {(r.shard, r.tier) for r in report.agents}
    assert set(groups) == expected
    assert groups[(rows[stalled].shard, rows[stalled].tier)][2] == 1


async def test_status_text_shows_totals_by_shard_and_tier(fleet: DemoFleet) -> None:
    """The text matrix has a row per shard and tier, an 'all' total; all green, but the head's
    change is not applied: it says which boxes are off the head revision, exit 2 (never
    "every agent is green")."""
    run = await cli("status", "--repo", str(fleet.repo), "--window", "1")
    assert run.code == 2, run.both
    lines = run.out.splitlines()
    for a in fleet.prepared.agents:
        assert any(line.split()[:2] == [a.shard, a.tier] for line in lines), run.out
    total = next(line for line in lines if line.split()[:1] == ["all"])
    assert total.split()[1:] == ["4", "0", "0"]
    assert "not on the head revision" in run.out and "every agent is green" not in run.out
