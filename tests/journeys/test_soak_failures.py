"""Journey 4: a box gets sick inside the rollout; the rollout rolls itself back and says why.

Each case commits a harmless change to tier fast (3 of the 4 boxes: a canary wave, then
two) and runs `apply --yes --format json` in the background, making one box sick at a
chosen moment:

- stall: the canary stops processing (alive, heartbeat fresh, queue filling) during its
  soak; the watchdog's 3 s stall window catches it;
- flap: the canary crashes 1 s after its reload, during its soak;
- crash: a wave-2 box crashes on its reload (`crash-on-reload`, set before its wave);
- slow reload: a wave-2 box's reload takes 6 s while its agent's `command_timeout_s` (set
  per agent in the shard file) is 2 s.

The fault stands for the change's harm, so it is cleared when the rollback starts. Each
case expects exit 3, an incident report naming the box and the reason, every box back on
its previous config (file == stamp == loaded, no lease), and for the watchdog's verdicts
(stall, flap) the head blocked. The operator then reverts the change for the next case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from reconciler.testing.journeys import (
    FleetPool,
    assert_converged,
    blocked,
    explained,
    incidents,
    revisions,
)

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Sickness:
    name: str
    fault: str
    value: float | None
    when: str  # soak: the canary, at its first soak tick; before-wave-2: a wave-2 box, at once
    reason: str  # what the output and the incident report say (regex)
    verdict: bool  # a watchdog verdict: the head is blocked

    def __str__(self) -> str:
        return self.name


TIMEOUT = r"time(d)?[ -]?out"
DOWN = r"crash|dead|down|not alive|not running|alive: false"
SICKNESSES = [
    Sickness("stall", "stall", None, "soak", r"stall", verdict=True),
    Sickness("flap", "flap", 1.0, "soak", DOWN, verdict=True),
    Sickness("crash-on-reload", "crash-on-reload", None, "before-wave-2", DOWN, verdict=False),
    Sickness("slow-reload", "slow-reload", 6.0, "before-wave-2", TIMEOUT, verdict=False),
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with FleetPool(tmp_path_factory.mktemp("j4"), agents=4) as p:
        yield p


def _set_command_timeout(agents, seconds):
    def change(doc):
        for entry in doc.get("agents") or []:
            if entry["name"] in agents:
                entry["command_timeout_s"] = seconds

    return change


@pytest.mark.parametrize("sick", SICKNESSES, ids=str)
def test_a_sick_box_during_the_rollout_rolls_it_back(fleets, sick, state_dir):
    """Exit 3; the incident names the box and the reason; every box back on its old config."""
    demo = fleets.get()
    fast = demo.tier("fast")
    base = demo.truths()
    start = demo.head()
    if sick.name == "slow-reload":  # every fast agent: whichever lands in wave 2 is slowed
        for shard in sorted({a.split("-fast-")[0] for a in fast}):
            demo.commit_yaml(
                f"shards/{shard}.yaml", _set_command_timeout(fast, 2),
                f"shard {shard}: command_timeout_s 2 for the fast agents",
            )  # fmt: skip
    prompt = (
        "You are a customer-support agent for Acme.\n"
        f"Answer from the knowledge base; sign as Acme support ({sick}).\n"
    )
    head = demo.commit_tier_config("fast", "prompt", prompt, f"tier fast: signature ({sick})")

    with demo.background("apply", "--yes", "--format", "json", "--state-dir", state_dir) as run:
        waves = run.wait_for("rollout.started", timeout=40)["waves"]
        if sick.when == "soak":
            box = waves[0][0]
            run.wait_for("soak.tick", wave=1, timeout=40)
        else:
            assert len(waves) >= 2, waves
            box = waves[1][0]
        demo.fault(box, sick.fault, sick.value)
        run.wait_for("rollback.started", timeout=60)
        demo.clear(box)  # the harm was the change's: it ends with the rollback
        result = run.finish(timeout=90)

    with explained(f"{sick} on {box}", result.describe()):
        result.expect(3, box).refuse(r"Traceback")
        assert re.search(sick.reason, result.output, re.I), f"the output does not say {sick.reason}"
        reports = incidents(state_dir)
        assert len(reports) == 1, f"{len(reports)} incident reports"
        text = reports[0].text
        assert box in text, f"the incident report does not name {box}"
        assert re.search(sick.reason, text, re.I), f"the incident does not say {sick.reason}"
        assert head in text, "the incident report does not name the revision"
        truths = assert_converged(demo, revisions(base), content=base)
        if sick.verdict:
            assert head in blocked(truths).values(), "a watchdog verdict did not block the head"
    demo.git("revert", "--no-edit", f"{start}..HEAD")  # the operator reverts the case
