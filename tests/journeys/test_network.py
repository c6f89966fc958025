"""Journey 5: the network misbehaves mid-rollout.

1. Every box's open SSH connections are reset (`connection-reset`, once) during the
   canary's soak: the rollout reconnects and goes on; exit 0, the fleet on the head.
2. A box not yet reached presents another host key, and its open connections are reset
   (so the next connection sees the new key), during the canary's soak: that box is
   refused ("host key changed"), nothing is written to it (file, stamp, secrets as before),
   and the rollout stops: exit 3 (rolled back, every box on its old config) or 1.

Both on one 4-box fleet (3 tier fast change), in order.
"""

from __future__ import annotations

import pytest

from reconciler.testing.journeys import (
    FleetPool,
    assert_converged,
    assert_untouched,
    explained,
    revisions,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with FleetPool(tmp_path_factory.mktemp("j5"), agents=4) as p:
        yield p


def _change(demo, label):
    prompt = (
        "You are a customer-support agent for Acme.\n"
        f"Answer from the knowledge base; sign as Acme support ({label}).\n"
    )
    return demo.commit_tier_config("fast", "prompt", prompt, f"tier fast: signature ({label})")


def test_connections_reset_during_the_soak_the_rollout_goes_on(fleets, state_dir):
    """connection-reset on every box mid-soak: exit 0, converged on the head."""
    demo = fleets.get()
    fast = demo.tier("fast")
    base = demo.truths()
    head = _change(demo, "reset")
    before = demo.all_counters()
    with demo.background("apply", "--yes", "--format", "json", "--state-dir", state_dir) as run:
        run.wait_for("soak.tick", wave=1, timeout=40)
        for agent in demo.agents:
            demo.fault(agent, "connection-reset")
        result = run.finish(timeout=90)
    after = demo.all_counters()
    resets = {
        a: after[a].get("connection_resets", 0) - before[a].get("connection_resets", 0)
        for a in after
    }
    with explained(f"connections reset: {resets}", result.describe()):
        result.expect(0).refuse(r"Traceback", r"rollback\.started")
        assert sum(resets.values()) > 0, "no open connection was reset: the fault hit nothing"
        truths = assert_converged(demo, head, agents=fast, outcome="applied")
        assert_untouched(base, truths, sorted(set(demo.agents) - set(fast)))


def test_a_changed_host_key_before_its_wave_refuses_the_box_and_writes_nothing(fleets, state_dir):
    """host-key-changed + connection-reset on a wave-2 box: refused, untouched, exit 3 or 1."""
    demo = fleets.get()
    base = demo.truths()
    _change(demo, "host key")
    with demo.background("apply", "--yes", "--format", "json", "--state-dir", state_dir) as run:
        waves = run.wait_for("rollout.started", timeout=40)["waves"]
        assert len(waves) >= 2, waves
        victim = waves[1][0]
        run.wait_for("soak.tick", wave=1, timeout=40)
        demo.fault(victim, "host-key-changed")
        demo.fault(victim, "connection-reset")
        result = run.finish(timeout=90)
    demo.clear(victim)
    with explained(f"{victim}: host key changed before wave 2", result.describe()):
        result.expect({1, 3}, victim, r"host key (has )?changed").refuse(r"Traceback")
        after = demo.truths()
        assert_untouched(base, after, [victim])
        if result.rc == 3:  # rolled back: every box on the config it ran before
            assert_converged(demo, revisions(base), content=base)
