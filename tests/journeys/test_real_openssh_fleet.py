"""Journeys against real OpenSSH: apply, revert, rollback, kill -9 + resume, secret rotation.

A 5-box RealFleet (reconciler/testing/realfleet.py): a real sshd per box on its own
loopback port and host key, a real agent process per box (health and Prometheus metrics
over HTTP, reload by SIGHUP through the example's `agentctl reload`), and the demo's
config repo built from fleet-config-example (real fleet.yaml, gates on, the demo's 5 s
soak). `reconcile` runs as a subprocess, as an operator runs it. The journeys share the
fleet and run in order, each from where the one before left it.

With no sshd here (or not root) the module is skipped locally and fails in CI.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.testing.journeys import assert_converged, describe, run
from reconciler.testing.openssh import OpenSshBox
from reconciler.testing.realfleet import RealFleet, RealFleetView

pytestmark = pytest.mark.timeout(240)

SECRET = "anthropic_api_key"
POISON = "!!poison!!"  # demo/workload.py: half the tasks of a prompt holding it fail


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealFleet]:
    why = OpenSshBox.why_unavailable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"real-OpenSSH journeys cannot run in CI: {why}")
        pytest.skip(why)
    with RealFleet(tmp_path_factory.mktemp("realfleet") / "fleet", 5) as f:
        yield f


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One --state-dir for the module's runs (journal, lock, incidents)."""
    return tmp_path_factory.mktemp("realfleet-state")


def _shas(view: RealFleetView) -> dict[str, str | None]:
    return {a: t.file_sha for a, t in view.truths().items()}


def test_apply_reaches_every_real_box_and_reloads_its_agent(fleet: RealFleet, state: Path) -> None:
    """The demo head (tier fast: a model upgrade) rolls out in waves through the gates; each
    fast agent reloaded in place (same pid) and runs the new bytes; the others untouched."""
    view = fleet.view
    fast = view.tier("fast")
    pids, reloads = fleet.pids(), fleet.reloads()
    before = view.truths()
    done = view.reconcile("apply", "--yes", "--state-dir", state)
    done.expect(0, r"3 box\(es\) change", r"gates\.passed", r"done").refuse(
        r"Traceback", r"rollback\.started"
    )
    truths = assert_converged(view, fleet.head, agents=fast, others=fleet.first, outcome="applied")
    assert fleet.pids() == pids, "an agent was restarted, not reloaded"
    after = fleet.reloads()
    for agent, t in truths.items():
        changed = agent in fast
        assert (t.file_sha != before[agent].file_sha) is changed, agent
        assert (after[agent] != reloads[agent]) is changed, (agent, after[agent])
        if changed:
            assert after[agent].endswith(" ok"), after[agent]
            assert t.loaded_sha == t.file_sha  # the agent's own sha of the bytes it loaded


def test_revert_restores_every_box_from_its_history(fleet: RealFleet, state: Path) -> None:
    """`git revert` of the applied change, apply: each box restores its previous bytes from
    its own history (a restore wave, watchdog only), and ends on the seeded config."""
    view = fleet.view
    fast = view.tier("fast")
    seeded = {a: t.file_sha for a, t in view.truths().items()}
    view.git("revert", "--no-edit", fleet.head)
    reverted = view.head()
    done = view.reconcile("apply", "--yes", "--state-dir", state, "--format", "json")
    done.expect(0, r"restore").refuse(r"Traceback", r"gates\.waiting", r"gates\.failed")
    watched = {e["agent"] for e in done.events if e.get("event") == "watchdog.passed"}
    assert watched == set(fast), done.describe()
    truths = assert_converged(view, reverted, agents=fast, others=fleet.first, outcome="applied")
    for agent in fast:  # the bytes the seed wrote, before the model upgrade
        seed = [h for h in truths[agent].history if h["revision"] == fleet.first]
        assert seed and truths[agent].file_sha == seed[-1]["config_sha256"], agent
        assert truths[agent].file_sha != seeded[agent], agent
    view.reconcile("diff", "--exit-code").expect(0)


def test_a_change_that_makes_the_agents_error_is_rolled_back(fleet: RealFleet, state: Path) -> None:
    """A poisoned prompt: the canary's real agent fails half its tasks, the task-errors gate
    fails, every box goes back to the bytes it ran (exit 3)."""
    view = fleet.view
    before = _shas(view)
    start = view.head()
    bad = view.commit_edit(
        "agents/_base.yaml", "    Answer from the knowledge base;",
        f"    {POISON} Answer from the knowledge base;", "base: a poisoned prompt",
    )  # fmt: skip
    done = view.reconcile("apply", "--yes", "--state-dir", state)
    done.expect(3, r"gates\.failed", r"task-errors", r"rollback\.started").refuse(r"Traceback")
    truths = assert_converged(view, {a: t.revision or "" for a, t in view.truths().items()})
    assert _shas(view) == before, "a box is not back on the bytes it ran"
    assert bad in {t.stamp.get("blocked_revision") for t in truths.values() if t.stamp}
    view.git("revert", "--no-edit", "HEAD")  # the operator backs the poison out
    assert view.head() != start


def test_kill_9_mid_apply_then_resume_leaves_every_box_on_old_or_new(
    fleet: RealFleet, state: Path
) -> None:
    """apply killed -9 after its first box is written; `reconcile resume` settles: every box
    consistent (file == stamp == loaded) on its old bytes or the new ones, none unknown."""
    view = fleet.view
    old = _shas(view)
    new_rev = view.commit_edit("agents/_base.yaml", "log_level: info", "log_level: debug", "A")
    laptop = view.background("apply", "--yes", "--format", "json", "--state-dir", state)
    try:
        laptop.wait_for("box.applied", timeout=90)
        laptop.send(signal.SIGKILL)
        killed = laptop.finish(timeout=30)
    finally:
        laptop.kill()
    assert killed.rc == -signal.SIGKILL, killed.describe()
    resumed = view.reconcile("resume", "--state-dir", state, "--break-leases")
    assert resumed.rc in (0, 3), resumed.describe()
    resumed.refuse(r"Traceback")
    truths = view.truths()
    problems = {a: t.problems() for a, t in truths.items() if t.problems()}
    assert not problems, problems
    for agent, t in truths.items():  # the old bytes, or the new revision's
        assert t.file_sha == old[agent] or t.revision == new_rev, t.line()
    # and an apply afterwards brings every box the change touches to it (others keep theirs)
    view.reconcile("apply", "--yes", "--state-dir", state).expect(0).refuse(r"Traceback")
    view.reconcile("diff", "--exit-code").expect(0)
    truths = view.truths()
    assert not {a: t.problems() for a, t in truths.items() if t.problems()}
    assert any(t.revision == new_rev for t in truths.values()), describe(truths)


def test_rotate_secret_leaves_only_the_new_value_on_every_box(
    fleet: RealFleet, state: Path, tmp_path: Path
) -> None:
    """rotate-secret --value-file: staged, promoted, retired behind the real agents' auth
    errors; every box's secrets file holds the new value only, and it is never printed."""
    view = fleet.view
    old = view.secret(SECRET)
    new = "sk-demo-rotated-" + os.urandom(8).hex()
    view.issue_key(new)  # the provider accepts it (the agents send `next` once staged)
    value = tmp_path / "new.key"
    value.write_text(new + "\n", encoding="utf-8")
    value.chmod(0o600)
    done = run(
        "rotate-secret", SECRET, "--repo", view.repo, "--value-file", value, "--yes",
        "--soak", "1", "--state-dir", state, timeout=180,
    )  # fmt: skip
    done.expect(0).refuse(r"Traceback")
    assert new not in done.output and old not in done.output
    for agent, t in view.truths().items():
        assert not t.problems(), (agent, t.problems())
        assert t.secrets is not None and t.secrets[SECRET] == {"current": new}, agent
        assert old not in json.dumps(t.secrets), agent
    assert view.secret(SECRET) == new  # the age backend holds the new value
