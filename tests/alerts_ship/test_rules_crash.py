"""The rules step killed mid-way (issue 16: "a fault mid-rollout loses no config").

One module fleet and a real Prometheus (conftest.py). `reconcile apply` runs through
the crashing entry point (reconciler.testing.crashing) and is SIGKILLed at a boundary of
the rules step (engine/rules.py RULES_BOUNDARIES): after some rule files are written
(before the manifest), after the manifest (before the reload), after the reload (before
the stamp). The next `reconcile apply` converges: Prometheus (/api/v1/rules) and the
rule files end on exactly the old or the new rules, never a mix. A run killed between
its file writes and its manifest, followed by a refused reload, restores the rules the
manifest names (the killed run's extra file removed, the overwritten one taken back
from history by its sha), not the mixed directory it found.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.rules import Manifest
from reconciler.testing.console import crashing_command
from reconciler.testing.crashpoints import ENV
from reconciler.testing.journeys import cli_env

from .conftest import Setup

FLEET = "acme-support"
HEALTH = "alerts/health.yaml"
EXTRA = "alerts/extra.yaml"
RULES = """rules:
  - name: TierErrorRateHigh
    metric: error_rate
    by: tier
    above: 0.3
    for: 1s
    severity: critical
    summary: "tier {{ $labels.tier }}: more than 30% of tasks fail"
"""
EXTRA_RULES = """rules:
  - name: TierErrorRateWarn
    metric: error_rate
    by: tier
    above: 0.1
    for: 1s
    severity: warning
    summary: "tier {{ $labels.tier }}: more than 10% of tasks fail"
"""
BROKEN = """  - name: Broken
    promql: "sum(rate(tasks_total[1m])"
    for: 1s
"""
# The two states the tests move the box between: "old" (health only) and "new" (health
# with another threshold, plus extra: two rule files change, extra sorts first).
STATES: dict[str, dict[str, str | None]] = {
    "old": {HEALTH: RULES, EXTRA: None},
    "new": {HEALTH: RULES.replace("above: 0.3", "above: 0.35"), EXTRA: EXTRA_RULES},
}
SEEN: dict[str, Any] = {}  # per state: the rule files and our loaded groups once shipped


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def _apply(s: Setup, state_dir: Path) -> Any:
    return s.demo.reconcile("apply", "--yes", "--state-dir", state_dir, timeout=120)


def _crash(s: Setup, state_dir: Path, at: str) -> None:
    env = {**cli_env(), ENV: at}
    argv = ["apply", "--repo", str(s.demo.repo), "--yes", "--state-dir", str(state_dir)]
    done = subprocess.run(
        [*crashing_command(), *argv],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, f"never reached {at}: exit {done.returncode}\n{done.stderr}"


def _put(s: Setup, state: str) -> None:
    """Commit the alert files of `state` (alert-only: no agent changes)."""
    for rel, text in STATES[state].items():
        path = s.demo.repo / rel
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text, encoding="utf-8")
    s.demo.git("add", "-A")
    s.demo.git("commit", "-qm", f"alerts: {state}")


def _ours(s: Setup) -> dict[str, set[str]]:
    return {n: h for n, h in s.prom.groups().items() if n.startswith(f"reconciler/{FLEET}/")}


def _manifest(s: Setup) -> dict[str, Any]:
    path = s.prom.rules_dir / f".reconciler-{FLEET}.rules.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _manifest_sha(s: Setup) -> str:
    path = s.prom.rules_dir / f".reconciler-{FLEET}.rules.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp_sha(s: Setup) -> str:
    path = s.prom.rules_dir / f".reconciler-{FLEET}.rules.json.stamp.json"
    sha = json.loads(path.read_text("utf-8"))["config_sha256"]
    assert isinstance(sha, str)
    return sha


def _now(s: Setup) -> tuple[dict[str, bytes], dict[str, set[str]]]:
    return s.prom.rule_files(), _ours(s)


def _assert_on(s: Setup, state: str) -> None:
    """Files, manifest (its shas), Prometheus's groups and the stamp: all `state`."""
    files, groups = _now(s)
    assert files == SEEN[state]["files"], (state, sorted(files))
    assert groups == SEEN[state]["groups"], (state, groups)
    doc = _manifest(s)
    assert set(doc["files"]) == set(files)
    assert {g: {h} for g, h in doc["groups"].items()} == groups
    assert _stamp_sha(s) == _manifest_sha(s) == SEEN[state]["manifest_sha"]
    assert not (s.prom.rules_dir / f".reconciler-{FLEET}.rules.json.lease").exists()


def _record(s: Setup, state: str) -> None:
    files, groups = _now(s)
    doc = _manifest(s)
    assert {g: {h} for g, h in doc["groups"].items()} == groups
    assert _stamp_sha(s) == _manifest_sha(s)
    SEEN[state] = {"files": files, "groups": groups, "manifest_sha": _manifest_sha(s)}


def test_first_rules_ship(setup: Setup, state_dir: Path) -> None:
    s, demo = setup, setup.demo
    rules_dir = str(s.prom.rules_dir.resolve())

    def name_prometheus(doc: Any) -> None:
        doc["connection"]["allowed_paths"].append(str(Path(rules_dir).parent))
        doc["alerting"]["evaluation_interval"] = "1s"
        doc["prometheus"] = {
            "host": "127.0.0.1", "port": s.ssh["port"], "user": s.ssh["user"],
            "key": s.ssh["key"], "known_hosts": s.ssh["known_hosts"], "rules_dir": rules_dir,
            "url": s.prom.url, "verify_timeout_s": 10,
        }  # fmt: skip

    (demo.repo / HEALTH).write_text(RULES, encoding="utf-8")
    demo.git("add", "-A")
    demo.commit_yaml("fleet.yaml", name_prometheus, "alerts shipped to prometheus")
    _apply(s, state_dir).expect(0, "alert rules shipped")
    _record(s, "old")
    assert f"{FLEET}-extra.rules.yml" not in SEEN["old"]["files"]


def test_killed_between_file_writes_a_refusal_restores_the_old_rules(
    setup: Setup, state_dir: Path
) -> None:
    """Killed after the first of two changed files: the dir is mixed (extra new, health
    old) under the old manifest. The next apply ships a broken rule on top: refused, and
    the restore gives back the old rules exactly - not the mix it found on disk."""
    s, demo = setup, setup.demo
    _put(s, "new")
    _crash(s, state_dir, "rules.write:2")
    files = s.prom.rule_files()
    assert f"{FLEET}-extra.rules.yml" in files  # written before the kill
    assert files[f"{FLEET}-health.rules.yml"] == SEEN["old"]["files"][f"{FLEET}-health.rules.yml"]

    with (demo.repo / HEALTH).open("a", encoding="utf-8") as f:
        f.write(BROKEN)
    demo.git("commit", "-qam", "a broken rule")
    done = _apply(s, state_dir).expect(3, "refused", "restored", "not undone")
    assert "Traceback" not in done.output
    files, groups = _now(s)
    assert files == SEEN["old"]["files"], sorted(files)
    assert groups == SEEN["old"]["groups"], groups

    demo.git("revert", "--no-edit", demo.head())  # back to "new"
    _apply(s, state_dir).expect(0, "alert rules shipped")
    _record(s, "new")
    assert f"{FLEET}-extra.rules.yml" in SEEN["new"]["files"]
    assert SEEN["new"]["groups"] != SEEN["old"]["groups"]


@pytest.mark.parametrize(
    ("at", "to"),
    [
        ("rules.reload", "old"),  # files and manifest written, not reloaded
        ("rules.write:2", "new"),  # some files written (old -> new: two), manifest not
        ("rules.stamp", "old"),  # reloaded and verified, not stamped
    ],
)
def test_killed_in_the_rules_step_the_next_apply_converges(
    setup: Setup, state_dir: Path, at: str, to: str
) -> None:
    s = setup
    _put(s, to)
    _crash(s, state_dir, at)
    assert _stamp_sha(s) != SEEN[to]["manifest_sha"]  # killed before its stamp

    _apply(s, state_dir).expect(0, "alert rules shipped")
    _assert_on(s, to)


def test_a_manifest_without_shas_is_still_read() -> None:
    """An older manifest listing names only: its files are ours (sha unknown, "": the
    restore then falls back to the bytes on disk); junk names are still dropped."""
    old = json.dumps({"files": ["acme-a.rules.yml", "../x.rules.yml"], "groups": {"g": "1"}})
    got = Manifest.parse(old.encode())
    assert (got.files, got.groups) == ({"acme-a.rules.yml": ""}, {"g": "1"})
    assert Manifest.parse(b'{"files": 3}').files == {}
