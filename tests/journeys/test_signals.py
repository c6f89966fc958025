"""Journey 3: `reconcile apply` interrupted by a signal in each phase, then one plain `apply`.

The interrupted run is `apply --yes --format json --state-dir S1` in the background; its
JSON event lines say where it is. In the phase it is stopped by kill -9, SIGTERM, SIGINT,
or SIGTERM then SIGKILL 2 s later (a cancelled CI job). Then one plain `apply --yes`, with
the same state dir or a fresh one (a new CI runner, the journal lost).

Phases and how a run is held there:
- applying: a `slow-reload` fault on a wave-2 box; stopped once that box holds the new
  file and its reload hangs (mid-wave);
- soaking: at the first `soak.tick`;
- gating: at the first `gates.waiting` (a fleet at 3.5 tasks/s: the canary has fewer than
  the gates' 30 samples after the 5 s soak, so the gates wait for more);
- rolling back: a bad change (output tokens x6) fails the canary's gates; a `slow-reload`
  fault on the canary, set after it applied, holds the restore; stopped after
  `rollback.started`, once the restore's lease is on the canary.

Expected: a signal is not a verdict. After one in applying, soaking or gating (a good
change), the next apply settles what was cut short and converges on the head: exit 0,
every changed box on the head, the others untouched, the head not blocked. After SIGTERM
or SIGINT the interrupted run itself restores what it changed and exits 3. Killed while
rolling back after a failed gate (a verdict), the next apply finishes the rollback: exit
3 (or, when the interrupted run finished it itself, a refusal saying it was rolled back),
every box back on its previous config, the head blocked.

The matrix (6 cases, to keep CI short) covers every signal, every phase and both
state-dir modes:

| phase        | signal         | next apply's state dir |
|--------------|----------------|------------------------|
| applying     | kill -9        | fresh                  |
| applying     | SIGTERM        | same                   |
| soaking      | SIGINT         | same                   |
| rolling back | kill -9        | fresh                  |
| rolling back | TERM then KILL | same                   |
| gating       | TERM then KILL | fresh                  |
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import pytest
from ruamel.yaml.scalarstring import LiteralScalarString

from reconciler.testing.journeys import (
    FleetPool,
    assert_converged,
    assert_untouched,
    blocked,
    explained,
    revisions,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)

GATING_RATE = 3.5  # tasks/s: ~18 in a 5 s soak, short of the gates' 30 samples
SLOW_RELOAD_S = 10.0


@dataclass(frozen=True)
class Case:
    phase: str  # applying | soaking | gating | rolling-back
    signal: str  # kill | term | int | term-then-kill
    state: str  # same | fresh

    def __str__(self) -> str:
        return f"{self.phase}-{self.signal}-{self.state}"

    @property
    def verdict(self) -> bool:
        return self.phase == "rolling-back"


CASES = [
    Case("applying", "kill", "fresh"),
    Case("applying", "term", "same"),
    Case("soaking", "int", "same"),
    Case("rolling-back", "kill", "fresh"),
    Case("rolling-back", "term-then-kill", "same"),
    Case("gating", "term-then-kill", "fresh"),  # last: its fleet runs at GATING_RATE
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with FleetPool(tmp_path_factory.mktemp("j3"), agents=6) as p:
        yield p


def _hold(demo, run, case, base):
    """Wait until the background apply is in the case's phase (setting faults to hold it)."""
    started = run.wait_for("rollout.started", timeout=40)
    waves = started["waves"]
    if case.phase == "applying":
        assert len(waves) >= 2, f"the change needs two waves: {waves}"
        slow = waves[1][0]
        demo.fault(slow, "slow-reload", SLOW_RELOAD_S)
        run.wait_for("wave.started", wave=2, timeout=60)
        wait_until(
            lambda: demo.truth(slow).file_sha != base[slow].file_sha,
            timeout=20,
            what=f"{slow} written (its reload held by slow-reload)",
        )
        return f"{slow} written, reload pending"
    if case.phase == "soaking":
        return run.wait_for("soak.tick", timeout=40)
    if case.phase == "gating":
        return run.wait_for("gates.waiting", timeout=60)
    canary = waves[0][0]
    run.wait_for("box.applied", agent=canary, timeout=40)
    demo.fault(canary, "slow-reload", SLOW_RELOAD_S)  # the restore's reload hangs
    run.wait_for("rollback.started", timeout=60)
    wait_until(
        demo.files(canary).lease.exists,
        timeout=10,
        what=f"{canary}: the restore's lease taken (its reload held by slow-reload)",
    )
    return f"{canary} being restored"


def _interrupt(run, how):
    if how == "kill":
        run.send(signal.SIGKILL)
    elif how == "term":
        run.send(signal.SIGTERM)
    elif how == "int":
        run.send(signal.SIGINT)
    else:
        run.send(signal.SIGTERM)
        time.sleep(2)
        run.send(signal.SIGKILL)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_interrupted_apply_then_one_plain_apply(fleets, case, tmp_path):
    """The interrupted run and the next apply end as a signal (no verdict) or a rollback would."""
    demo = fleets.get(rate=GATING_RATE if case.phase == "gating" else None)
    fast = demo.tier("fast")
    others = sorted(set(demo.agents) - set(fast))
    base = demo.truths()
    if case.verdict:  # a bad config of its own: no box's history holds it (no fast path)
        verbose = (
            "You are a customer-support agent for Acme.\n"
            f"Think step by step and explain every detail of your answer. ({case})\n"
        )

        def make_verbose(doc):  # whatever an earlier case on this fleet left in the tier
            doc["config"]["max_tokens"] = 3072
            doc["config"]["prompt"] = LiteralScalarString(verbose)

        head = demo.commit_yaml(
            "agents/tier-fast.yaml", make_verbose, "tier fast: think step by step, max_tokens 3072"
        )
    else:
        prompt = (
            "You are a customer-support agent for Acme.\n"
            f"Answer from the knowledge base; sign as Acme support ({case}).\n"
        )
        head = demo.commit_tier_config("fast", "prompt", prompt, f"tier fast: signature {case}")
    first_state = tmp_path / "state-1"
    with demo.background("apply", "--yes", "--format", "json", "--state-dir", first_state) as run:
        where = _hold(demo, run, case, base)
        _interrupt(run, case.signal)
        if case.phase in ("applying", "rolling-back"):
            for agent in demo.agents:  # only held the phase; the next apply runs unhindered
                demo.clear(agent, "slow-reload")
        interrupted = run.finish(timeout=90)
    context = f"{case}: interrupted at {where}\n{interrupted.describe()}"
    interrupted.refuse(r"Traceback")

    if case.signal == "kill":
        assert interrupted.rc == -signal.SIGKILL, context
    elif case.signal in ("term", "int"):
        assert interrupted.rc == 3, f"exit {interrupted.rc}, not 3 (restored)\n{context}"
        with explained(f"after {context}"):
            restored = assert_converged(demo, revisions(base), content=base)
            assert head not in blocked(restored).values(), "a signal blocked the head"
    else:  # SIGTERM, SIGKILL 2 s later: finished its restore in time, or was killed
        assert interrupted.rc in (3, -signal.SIGKILL), context

    next_state = first_state if case.state == "same" else tmp_path / "state-2"
    then = demo.reconcile("apply", "--yes", "--state-dir", next_state, timeout=150)
    with explained("the next apply:", then.describe(), f"after {context}"):
        then.refuse(r"Traceback")
        if not case.verdict:
            then.expect(0)
            truths = assert_converged(demo, head, agents=fast)
            assert_untouched(base, truths, others)
            moved = [a for a in fast if truths[a].file_sha == base[a].file_sha]
            assert not moved, f"stamped {head[:12]} but still on the old bytes: {moved}"
            assert head not in blocked(truths).values(), "a signal blocked the head"
        else:
            if interrupted.rc == 3:
                then.expect({1, 3}, r"rolled[ -]back")
            else:
                then.expect(3, r"rolled[ -]back")
            truths = assert_converged(demo, revisions(base), content=base)
            assert head in blocked(truths).values(), "the head is not blocked after its rollback"
    if case.verdict:
        demo.revert_head()  # the operator reverts the bad change; the next case starts clean
