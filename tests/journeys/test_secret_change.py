"""Journey 2: a secret's value changes in its backend; diff shows it, apply rolls it out.

The demo keeps secret values in DIR/secrets/ (outside the repo) and the fingerprint key in
DIR/fleet.key. The repo's head is first reverted to what the boxes run (`git revert`, so
the only difference left is the secret). Then `anthropic_api_key` gets a new (good) value.
Expected: `diff` shows the secret changed on every box, as fingerprints, never the value;
`apply --yes` rolls it out in waves, each box's secrets file rewritten (0600) and its agent
reloaded and verified, stamps' `secrets_fingerprint` updated; `diff --exit-code` exits 0.
"""

from __future__ import annotations

import json
import secrets

import pytest

from reconciler.testing.journeys import assert_converged, demo_fleet, explained

pytestmark = pytest.mark.timeout(120)

SECRET = "anthropic_api_key"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("j2") / "demo", 4) as fleet:
        yield fleet


def test_a_changed_secret_value_is_diffed_without_its_value_and_rolled_out(demo, state_dir):
    """diff: secrets changed on every box, no value; apply: 0, every box has the new value."""
    head = demo.revert_head()  # the boxes run this config: only the secret will differ
    old_value = demo.secret(SECRET)
    new_value = f"sk-demo-{secrets.token_hex(16)}"
    demo.set_secret(SECRET, new_value)
    before, counters = demo.truths(), demo.all_counters()
    old_prints = {t.stamp["secrets_fingerprint"] for t in before.values()}
    assert len(old_prints) == 1, old_prints

    text = demo.reconcile("diff")
    with explained(text.describe()):
        text.expect(0, r"secret", *demo.agents).refuse(r"Traceback")
        assert new_value not in text.output and old_value not in text.output, "a secret value"
    js = demo.reconcile("diff", "--format", "json")
    with explained(js.describe()):
        js.expect(0)
        assert new_value not in js.output and old_value not in js.output, "a secret value"
        doc = json.loads(js.stdout)
        assert doc["summary"]["secrets_changed"] == len(demo.agents), doc["summary"]
        for agent in doc["diff"]["agents"]:
            assert (agent["secrets"] or {}).get("check") == "changed", agent
            assert not agent["changes"], f"{agent['agent']}: payload changes {agent['changes']}"
    demo.reconcile("diff", "--exit-code").expect(2)

    applied = demo.reconcile("apply", "--yes", "--state-dir", state_dir)
    with explained(applied.describe()):
        applied.expect(0, rf"{len(demo.agents)} box\(es\) change", r"wave 2", *demo.agents)
        applied.refuse(r"Traceback", r"rollback\.started", new_value, old_value)
        truths = assert_converged(demo, head, outcome="applied")
        for name, t in truths.items():
            held = json.dumps(t.secrets)
            assert new_value in held and old_value not in held, f"{name}: not the new value"
            assert t.file_sha == before[name].file_sha, f"{name}: the config file changed"
        prints = {t.stamp["secrets_fingerprint"] for t in truths.values()}
        assert len(prints) == 1 and prints != old_prints, f"fingerprints {old_prints} -> {prints}"
        after = demo.all_counters()
        reloads = {a: after[a]["reloads"] - counters[a]["reloads"] for a in demo.agents}
        assert all(n >= 1 for n in reloads.values()), f"not reloaded: {reloads}"
    demo.reconcile("diff", "--exit-code").expect(0)
