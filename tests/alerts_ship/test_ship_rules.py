"""Alert rules shipped with the rollout to a real Prometheus (issue 16, "Shipped with the rollout").

The tests run in order on one module fleet (conftest.py), each starting from where the
previous one left the repo and the boxes:

1. a change to tier fast plus the first rules: the agents' waves, then the rules as the
   last step; Prometheus loads our groups with their content hashes, and an injected
   error-rate fault on tier fast fires the tier alert (not for tier smart);
   `reconcile diff` (live) then shows no alert change, and an edited threshold as one;
2. an alert-only change: the rules step alone, no agent touched;
3. a broken rule: Prometheus refuses it, the previous files are restored, apply exits 3
   with Prometheus's own error, agents untouched;
4. `git revert` of 3 and 2: the rules shipped in 1 come back, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing.journeys import assert_untouched, wait_until

from .conftest import Setup

FLEET = "acme-support"
HEALTH = "alerts/health.yaml"
ALERT = "TierErrorRateHigh"
RULES = f"""rules:
  - name: {ALERT}
    metric: error_rate
    by: tier
    above: 0.3
    for: 1s
    severity: critical
    summary: "tier {{{{ $labels.tier }}}}: more than 30% of tasks fail"
"""
BROKEN = """  - name: Broken
    promql: "sum(rate(tasks_total[1m])"
    for: 1s
"""
SEEN: dict[str, Any] = {}  # what earlier tests saw, for the later ones


def _apply(s: Setup, state_dir: Path) -> Any:
    return s.demo.reconcile("apply", "--yes", "--state-dir", state_dir, timeout=150)


def _manifest_groups(s: Setup) -> dict[str, str]:
    path = s.prom.rules_dir / f".reconciler-{FLEET}.rules.json"
    groups = json.loads(path.read_text(encoding="utf-8"))["groups"]
    assert isinstance(groups, dict)
    return groups


def _ours(s: Setup) -> dict[str, set[str]]:
    return {n: h for n, h in s.prom.groups().items() if n.startswith(f"reconciler/{FLEET}/")}


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def test_rules_ship_after_the_last_wave_and_a_fault_fires_the_alert(
    setup: Setup, state_dir: Path
) -> None:
    s, demo = setup, setup.demo
    rules_dir = str(s.prom.rules_dir.resolve())

    def name_prometheus(doc: Any) -> None:
        doc["connection"]["allowed_paths"].append(str(Path(rules_dir).parent))
        doc["alerting"]["evaluation_interval"] = "1s"
        doc["alerting"]["rate_window"] = "10s"
        doc["prometheus"] = {
            "host": "127.0.0.1", "port": s.ssh["port"], "user": s.ssh["user"],
            "key": s.ssh["key"], "known_hosts": s.ssh["known_hosts"], "rules_dir": rules_dir,
            "url": s.prom.url, "verify_timeout_s": 10,
        }  # fmt: skip

    (demo.repo / HEALTH).write_text(RULES, encoding="utf-8")
    demo.git("add", "-A")
    head = demo.commit_yaml("fleet.yaml", name_prometheus, "alerts shipped to prometheus")
    fast = demo.tier("fast")

    done = _apply(s, state_dir).expect(0, "after the last wave", "alert rules shipped")
    out = done.output
    assert out.index("alert rules shipped") > max(out.rfind(a) for a in fast), out
    for agent in demo.agents:  # the fleet's pending change (tier fast) went out first
        assert demo.truth(agent).revision == (head if agent in fast else demo.first_commit)
    files = s.prom.rule_files()
    assert sorted(files) == [f"{FLEET}-cost.rules.yml", f"{FLEET}-health.rules.yml",
                             f"{FLEET}-recording.rules.yml"]  # fmt: skip
    groups = _manifest_groups(s)
    assert _ours(s) == {n: {h} for n, h in groups.items()}
    stamp = json.loads(
        (s.prom.rules_dir / f".reconciler-{FLEET}.rules.json.stamp.json").read_text("utf-8")
    )
    assert (stamp["revision"], stamp["outcome"], stamp["agent"]) == (head, "applied", "prometheus")
    assert not (s.prom.rules_dir / f".reconciler-{FLEET}.rules.json.lease").exists()
    SEEN.update(files=files, groups=groups)

    assert not s.prom.firing(ALERT)
    for agent in fast:
        demo.fault(agent, "error-rate", 0.9)
    try:
        firing = wait_until(
            lambda: s.prom.firing(ALERT), timeout=45, interval=0.5, what=f"{ALERT} firing"
        )
        assert {a["labels"]["tier"] for a in firing} == {"fast"}
        assert {a["labels"]["severity"] for a in firing} == {"critical"}
    finally:
        demo.clear_all()


def test_live_diff_shows_the_alerts_prometheus_loaded(setup: Setup) -> None:
    """`reconcile diff` (live) reads our groups from /api/v1/rules: none differ right after
    shipping; an edited threshold in the work tree shows as changed, old and new PromQL."""
    demo = setup.demo

    def alerts() -> list[dict[str, Any]]:
        done = demo.reconcile("diff", "--format", "json").expect(0)
        found = json.loads(done.stdout)["diff"]["alerts"]
        assert isinstance(found, list)
        return found

    assert alerts() == []
    path = demo.repo / HEALTH
    path.write_text(RULES.replace("above: 0.3", "above: 0.45"), encoding="utf-8")
    try:
        changed = alerts()
    finally:
        demo.git("checkout", "--", HEALTH)
    assert [(c["name"], c["kind"]) for c in changed] == [(ALERT, "changed")], changed
    assert "0.3" in changed[0]["old_expr"] and "0.45" in changed[0]["new_expr"], changed


def test_an_alert_only_change_touches_no_agent(setup: Setup, state_dir: Path) -> None:
    s, demo = setup, setup.demo
    before, reloads = demo.truths(), {a: demo.counters(a)["reloads"] for a in demo.agents}
    SEEN["threshold"] = demo.commit_edit(HEALTH, "above: 0.3", "above: 0.35", "alert: 35%")

    _apply(s, state_dir).expect(0, "alone", "alert rules shipped")

    assert_untouched(before, demo.truths(), demo.agents)
    assert {a: demo.counters(a)["reloads"] for a in demo.agents} == reloads
    groups = _manifest_groups(s)
    health = f"reconciler/{FLEET}/health"
    assert groups[health] != SEEN["groups"][health]
    assert _ours(s) == {n: {h} for n, h in groups.items()}
    SEEN["groups2"], SEEN["files2"] = groups, s.prom.rule_files()


def test_a_broken_rule_is_refused_and_restored(setup: Setup, state_dir: Path) -> None:
    s, demo = setup, setup.demo
    before = demo.truths()
    with (demo.repo / HEALTH).open("a", encoding="utf-8") as f:
        f.write(BROKEN)
    demo.git("commit", "-qam", "a broken rule")
    SEEN["broken"] = demo.head()

    def unchanged() -> None:
        assert s.prom.rule_files() == SEEN["files2"]
        assert _ours(s) == {n: {h} for n, h in SEEN["groups2"].items()}
        assert_untouched(before, demo.truths(), demo.agents)

    # The reload refuses: Prometheus's answer says only that the configuration failed.
    done = _apply(s, state_dir).expect(
        3, "refused", "prometheus said: failed to reload config", "restored", "not undone"
    )
    assert "Traceback" not in done.output
    unchanged()

    # With a check command, the box's promtool checks the files before the reload and
    # its error names the rule; the head (the broken rule) is tried again.
    def check_first(doc: Any) -> None:
        doc["prometheus"]["check_command"] = ["promtool", "check", "rules"]

    demo.commit_yaml("fleet.yaml", check_first, "prometheus: check rules before reload")
    _apply(s, state_dir).expect(
        3, "refused", "promtool check rules exited 1", '"Broken": could not parse expression',
        "unclosed left parenthesis", "restored", "not undone",
    )  # fmt: skip
    unchanged()


def test_git_revert_restores_the_rules(setup: Setup, state_dir: Path) -> None:
    s, demo = setup, setup.demo
    before = demo.truths()
    demo.git("revert", "--no-edit", SEEN["broken"])  # fleet.yaml keeps its check_command
    demo.git("revert", "--no-edit", SEEN["threshold"])

    _apply(s, state_dir).expect(0, "alone", "alert rules shipped")

    assert s.prom.rule_files() == SEEN["files"]
    assert _ours(s) == {n: {h} for n, h in SEEN["groups"].items()}
    assert_untouched(before, demo.truths(), demo.agents)
