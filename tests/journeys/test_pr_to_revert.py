"""Journey 1: a PR's fleet diff, its merge applied, a bad change rolled back, a revert's fast path.

One operator's afternoon on a 6-box demo fleet (3 tier fast, 3 tier smart), in order:
the PR-mode markdown diff of the demo's head commit; `apply` of that head; the classic bad
prompt change (errors flat, output tokens x6) caught by the gates and rolled back, its
revision blocked; a good change applied; `git revert` of it and `apply`: the revert fast
path (each box restores from its own history, zero config bytes sent, watchdog but no
metric gates); `status` green.
"""

from __future__ import annotations

import re

import pytest

from reconciler.testing.journeys import (
    assert_converged,
    assert_untouched,
    blocked,
    demo_fleet,
    incidents,
)

pytestmark = pytest.mark.timeout(240)

GOOD_PROMPT = (
    "You are a customer-support agent for Acme.\n"
    "Answer from the knowledge base; say so when you do not know.\n"
    "Greet the customer by name.\n"
)  # same length of answers, a few more input tokens: passes every gate
METRIC_GATES = ("task-errors", "latency", "cost", "output-tokens")
VERBOSE_PROMPT = (
    "  max_tokens: 3072\n  prompt: |\n    You are a customer-support agent for Acme.\n"
    "    Think step by step and explain every detail of your answer.\n"
)  # the walkthrough's bad change (reconciler/cli/demo.py): output tokens per task x6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_fleet(tmp_path_factory.mktemp("j1") / "demo", 6) as fleet:
        yield fleet


def test_pr_diff_apply_bad_change_rolled_back_good_change_reverted_fast(demo, state_dir):
    """PR diff -> apply (0) -> bad change rolled back by the gates (3, blocked) -> good change
    (0) -> git revert + apply: the fast path (0, no config bytes, no metric gates) -> status 0."""
    first, head = demo.first_commit, demo.head_commit
    fast, smart = demo.tier("fast"), demo.tier("smart")
    secret_values = [demo.secret("anthropic_api_key"), demo.secret("kb_token")]

    # -- the pull request: the fleet diff posted on it (git objects only, no fleet contact)
    pr = demo.reconcile("diff", "--base", first, "--head", head, "--format", "markdown")
    pr.expect(0, r"3 agents to roll out", r"claude-haiku-4 → claude-haiku-4-5", r"\bcost\b")
    pr.expect(0, *fast, r"agent-platform-leads")
    assert not any(s in pr.output for s in secret_values), "a secret value in the PR diff"
    for agent in smart:
        assert agent not in pr.stdout, f"{agent} does not change but the PR diff names it"
    demo.reconcile("diff", "--base", first, "--head", head, "--exit-code").expect(2)

    # -- merged: apply the head in waves, gates on
    applied = demo.reconcile("apply", "--yes", "--state-dir", state_dir).expect(
        0, r"3 box\(es\) change", *fast, r"gates\.passed", r"done"
    )
    applied.refuse(r"Traceback", r"rollback\.started")
    on_head = assert_converged(demo, head, agents=fast, others=first, outcome="applied")
    assert incidents(state_dir) == []

    # -- the classic bad prompt change: errors flat, output tokens per task x6
    bad = demo.commit_edit(
        "agents/tier-fast.yaml", "  max_tokens: 512\n", VERBOSE_PROMPT,
        "tier fast: think step by step, max_tokens 3072",
    )  # fmt: skip
    rolled = demo.reconcile("apply", "--yes", "--state-dir", state_dir)
    rolled.expect(
        3, r"gates\.failed", r"output-tokens\b.*\bfail", r"rollback\.started", r"incident"
    )
    rolled.refuse(r"Traceback")
    after_bad = assert_converged(demo, head, agents=fast, others=first)
    for agent, t in after_bad.items():  # every box back on the bytes it ran before
        assert t.file_sha == on_head[agent].file_sha, f"{agent} not back on its previous config"
    assert bad in blocked(after_bad).values(), f"no box records {bad[:12]} as blocked"
    reports = incidents(state_dir)
    assert len(reports) == 1, [r.rollout_id for r in reports]
    report = reports[0]
    assert bad in report.text, "the incident report does not name the bad revision"
    assert re.search(r"output-tokens.{0,80}fail|fail.{0,80}output-tokens", report.text, re.I | re.S)
    assert "rolled-back" in report.text or "rolled back" in report.text
    assert report.rollout_id in rolled.output, "the incident's path is not printed"

    # -- the bad revision is blocked: a second apply refuses and touches nothing
    again = demo.reconcile("apply", "--yes", "--state-dir", state_dir)
    again.expect({1, 3}, r"rolled back", bad[:12])
    assert_untouched(after_bad, demo.truths(), demo.agents)

    # -- the operator reverts the bad commit and merges a good change on top
    demo.revert_head()
    good = demo.commit_tier_config("fast", "prompt", GOOD_PROMPT, "tier fast: greet by name")
    demo.reconcile("apply", "--yes", "--state-dir", state_dir).expect(
        0, r"3 box\(es\) change", r"prompt", r"done"
    ).refuse(r"Traceback", r"rollback\.started")
    on_good = assert_converged(demo, good, agents=fast, others=first, outcome="applied")
    assert len(incidents(state_dir)) == 1

    # -- incident drill: git revert + apply is the fast path
    before = demo.all_counters()
    revert = demo.revert_head()
    fast_path = demo.reconcile("apply", "--yes", "--state-dir", state_dir, "--format", "json")
    fast_path.refuse(r"Traceback", r"ZeroDivisionError")
    fast_path.expect(0, r"restore")
    plan = fast_path.first("plan")  # --format json: the plan is the first JSON line
    assert plan is not None and plan["plan"]["waves"], f"no plan printed\n{fast_path.describe()}"
    for wave in plan["plan"]["waves"]:
        assert not any(g in wave["gates"] for g in METRIC_GATES), f"metric gates on {wave}"
    kinds = fast_path.kinds()
    assert "gates.waiting" not in kinds, "the restore waves wait for metric gates"
    assert "gates.failed" not in kinds
    assert not any(
        f.get("gate") in METRIC_GATES
        for e in fast_path.events
        for f in (e.get("figures") or [])
        if isinstance(f, dict)
    ), "metric gates judged a restore wave"
    watched = {e["agent"] for e in fast_path.events if e.get("event") == "watchdog.passed"}
    assert watched == set(fast), f"watchdog passed for {sorted(watched)}, want {fast}"
    finished = fast_path.first("rollout.finished")
    assert finished is not None, fast_path.describe()
    assert finished.get("exit_code") == 0, finished
    after = demo.all_counters()
    sent = {a: after[a]["config_file_bytes"] - before[a]["config_file_bytes"] for a in demo.agents}
    assert sent == dict.fromkeys(demo.agents, 0), f"config bytes sent by the revert: {sent}"
    reverted = assert_converged(demo, revert, agents=fast, others=first, outcome="applied")
    for agent in fast:  # the bytes it ran before the good change
        assert reverted[agent].file_sha == on_head[agent].file_sha, agent
        assert reverted[agent].file_sha != on_good[agent].file_sha, agent
    demo.reconcile("diff", "--exit-code").expect(0)

    # -- and the fleet is green
    demo.reconcile("status", "--all", "--window", "2").expect(0, *demo.agents).refuse(r"Traceback")
