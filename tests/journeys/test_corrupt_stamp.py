"""Journey 6: one box's stamp is garbage.

The box's state is unknown, not foreign (a foreign stamp is one that names another fleet
or agent): `reconcile diff` says `unknown` for it in every format (the JSON summary too)
and exits 1, as for a box it cannot read; with `--allow-unreachable` it reports the box
and exits 0 (2 with `--exit-code`, the head's change pending). `reconcile apply --yes`
refuses naming the box, exit 1, and writes nothing to any box.
"""

from __future__ import annotations

import json
import re

import pytest

from reconciler.testing.journeys import assert_untouched, demo_fleet, explained

pytestmark = pytest.mark.timeout(120)

GARBAGE = b"\x00{not a stamp\n\xff"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("j6") / "demo", 4) as fleet:
        yield fleet


def test_a_corrupt_stamp_is_unknown_in_every_diff_and_apply_refuses(demo, state_dir):
    """diff: `unknown` (text, markdown, json), exit 1 (0/2 with --allow-unreachable); apply: 1."""
    box = demo.tier("fast")[-1]  # a box the head's change would write
    demo.files(box).stamp.write_bytes(GARBAGE)
    before, counters = demo.truths(), demo.all_counters()
    mention = re.compile(rf"{box}.*\bunknown\b|\bunknown\b.*{box}", re.I)
    foreign = re.compile(rf"{box}.*\bforeign\b|\bforeign\b.*{box}", re.I)

    for fmt in ("text", "markdown"):
        r = demo.reconcile("diff", "--format", fmt)
        with explained(r.describe()):
            r.expect(1, box).refuse(r"Traceback")
            assert mention.search(r.stdout), f"{fmt}: {box} is not shown as unknown"
            assert not foreign.search(r.stdout), f"{fmt}: {box} is shown as foreign"
    r = demo.reconcile("diff", "--format", "json")
    with explained(r.describe()):
        r.expect(1).refuse(r"Traceback")
        doc = json.loads(r.stdout)
        status = {a["agent"]: a["status"] for a in doc["diff"]["agents"]}
        assert status[box] == "unknown", status
        assert doc["summary"]["unknown"] == 1, doc["summary"]
        assert doc["summary"]["foreign"] == 0, doc["summary"]

    r = demo.reconcile("diff", "--allow-unreachable")
    with explained(r.describe()):
        r.expect(0, box).refuse(r"Traceback")
        assert mention.search(r.stdout), f"{box} is not shown as unknown"
    demo.reconcile("diff", "--allow-unreachable", "--exit-code").expect(2)

    r = demo.reconcile("apply", "--yes", "--state-dir", state_dir)
    with explained(r.describe()):
        r.expect(1, box, r"stamp").refuse(r"Traceback", r"rollout\.started", r"box\.applied")
        after = demo.truths()
        assert_untouched(before, after, demo.agents)
        writes = {a: c["writes"] - counters[a]["writes"] for a, c in demo.all_counters().items()}
        assert writes == dict.fromkeys(demo.agents, 0), f"SFTP writes: {writes}"
        assert demo.files(box).stamp.read_bytes() == GARBAGE
