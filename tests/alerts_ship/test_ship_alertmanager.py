"""alertmanager.yml shipped with the rollout to a real Alertmanager (issue 16), and the leak
scan over it (issue 14's canary, for the routes' secret URLs).

One small demo fleet, the module's SSH box (conftest.py) and Debian's
prometheus-alertmanager on loopback, all stopped at the end of the module. The routes'
secret URLs (fleet.yaml secrets.files, outside the repo) are canaries:

1. `alerts render` prints and writes placeholders only; `apply` ships the file 0600 with
   the values in it, Alertmanager loads it (its /api/v2/status names the marker receiver),
   and no canary is in the apply's output, `history`, the state dir (journal, reports) or
   any other file of the Alertmanager box (stamp, history of the file we replaced).
2. a value Alertmanager refuses (an ftp:// webhook) with an alerting change: refused, the
   previous file restored and loaded again, exit 3 with Alertmanager's own error, and the
   canary still in no output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.testing.journeys import Demo, demo_fleet, wait_until
from reconciler.testing.ports import free_port

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CANARY_HOOK = "http://127.0.0.1:9/hook/canary-am-7f3e9c21d4"
CANARY_SLACK = "https://hooks.slack.invalid/services/canary-am-b81d55e0aa"
BAD_HOOK = "ftp://127.0.0.1/canary-am-refused-40c2f9"
INITIAL = 'route: {receiver: "none"}\nreceivers: [{name: "none"}]\n'


@dataclass
class AM:
    url: str
    proc: subprocess.Popen[bytes]
    config: Path

    def original(self) -> str:
        r = httpx.get(f"{self.url}/api/v2/status", timeout=5, trust_env=False)
        r.raise_for_status()
        text = r.json()["config"]["original"]
        assert isinstance(text, str)
        return text


@dataclass
class Setup:
    demo: Demo
    am: AM
    ssh: dict[str, Any]
    secrets: Path
    state: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, ssh_box: dict[str, Any]) -> Iterator[Setup]:
    if not Path(BINARY).exists():
        pytest.fail(f"prometheus-alertmanager not installed at {BINARY}; scripts/test installs it")
    root = tmp_path_factory.mktemp("am")
    work = root / "am"
    work.mkdir()
    config = work / "alertmanager.yml"
    config.write_text(INITIAL, encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, f"--config.file={config}", f"--storage.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    am = AM(f"http://127.0.0.1:{port}", proc, config)
    try:

        def up() -> bool:
            assert proc.poll() is None, f"alertmanager exited {proc.returncode}"
            try:
                return "none" in am.original()
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=30, what="alertmanager answering")
        secrets = root / "secrets"
        secrets.mkdir()
        (secrets / "cost_webhook_url").write_text(CANARY_HOOK, encoding="utf-8")
        (secrets / "oncall_slack_url").write_text(CANARY_SLACK, encoding="utf-8")
        with demo_fleet(root / "demo", 2) as demo:
            yield Setup(demo, am, ssh_box, secrets, root / "state")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _leaks(text: str | bytes, *values: str) -> list[str]:
    hay = text if isinstance(text, bytes) else text.encode()
    return [v for v in values if v.encode() in hay or v.split("/")[-1].encode() in hay]


def _scan_tree(root: Path, skip: set[Path], *values: str) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        if _leaks(path.read_bytes(), *values):
            found.append(str(path))
    return found


def test_alertmanager_shipped_0600_loaded_and_no_secret_in_any_output(setup: Setup) -> None:
    s, demo = setup, setup.demo
    am_dir = str(s.am.config.parent.resolve())

    def name_alertmanager(doc: Any) -> None:
        doc["connection"]["allowed_paths"].append(am_dir)
        files = doc["secrets"].setdefault("files", {})
        files["cost_webhook_url"] = str(s.secrets / "cost_webhook_url")
        files["oncall_slack_url"] = str(s.secrets / "oncall_slack_url")
        doc["alertmanager"] = {
            "host": "127.0.0.1", "port": s.ssh["port"], "user": s.ssh["user"],
            "key": s.ssh["key"], "known_hosts": s.ssh["known_hosts"],
            "config_path": str(s.am.config.resolve()), "url": s.am.url, "verify_timeout_s": 15,
        }  # fmt: skip

    demo.commit_yaml("fleet.yaml", name_alertmanager, "alertmanager shipped")
    outputs = []

    rendered = s.state.parent / "rendered"
    outputs.append(
        demo.reconcile("alerts", "render", "--repo", demo.repo, "--out", rendered).expect(0).output
    )  # placeholders only
    assert (
        b"reconciler-secret.invalid/cost_webhook_url"
        in (rendered / "alertmanager.yml").read_bytes()
    )
    assert not _scan_tree(rendered, set(), CANARY_HOOK, CANARY_SLACK)

    done = demo.reconcile("apply", "--yes", "--state-dir", s.state, timeout=150)
    done.expect(0, "alertmanager.yml shipped")
    outputs.append(done.output)
    shipped = s.am.config.read_bytes()
    assert CANARY_HOOK.encode() in shipped and CANARY_SLACK.encode() in shipped
    assert s.am.config.stat().st_mode & 0o777 == 0o600
    marker = next(ln for ln in shipped.decode().splitlines() if "reconciler-sha256-" in ln)
    marker = marker.split('"')[1]
    assert marker in s.am.original()
    stamp = json.loads(s.am.config.with_name("alertmanager.yml.stamp.json").read_text("utf-8"))
    assert (stamp["agent"], stamp["outcome"]) == ("alertmanager", "applied")
    # the file we replaced is in the box's history, 0600
    kept = [
        p
        for p in s.am.config.parent.rglob("*")
        if p.is_file() and p.read_bytes() == INITIAL.encode() and p != s.am.config
    ]
    assert kept and all(p.stat().st_mode & 0o777 == 0o600 for p in kept)

    # nothing to do the second time: the stamp names this file
    again = demo.reconcile("apply", "--yes", "--state-dir", s.state, timeout=150).expect(0)
    assert "alertmanager.yml: ship" not in again.output
    outputs.append(again.output)
    outputs.append(demo.reconcile("history", "--state-dir", s.state).output)

    assert not _leaks("\n".join(outputs), CANARY_HOOK, CANARY_SLACK)
    assert not _scan_tree(s.state, set(), CANARY_HOOK, CANARY_SLACK)
    assert not _scan_tree(
        s.am.config.parent, {s.am.config} | set((s.am.config.parent / "data").rglob("*")),
        CANARY_HOOK, CANARY_SLACK,
    )  # fmt: skip
    SEEN["shipped"], SEEN["marker"] = shipped, marker


SEEN: dict[str, Any] = {}


def test_a_refused_alertmanager_yml_is_restored_exit_3(setup: Setup) -> None:
    s, demo = setup, setup.demo
    assert SEEN, "needs the first test"
    (s.secrets / "cost_webhook_url").write_text(BAD_HOOK, encoding="utf-8")
    try:

        def slower(doc: Any) -> None:
            for route in doc["alerting"]["routes"]:
                route["repeat_interval"] = "6h"

        demo.commit_yaml("fleet.yaml", slower, "alert routes: repeat every 6h")
        done = demo.reconcile("apply", "--yes", "--state-dir", s.state, timeout=150)
        done.expect(3, "Alertmanager refused", "alertmanager said:", "restored", "not undone")
        assert "Traceback" not in done.output
        assert not _leaks(done.output, CANARY_HOOK, CANARY_SLACK, BAD_HOOK)
        assert s.am.config.read_bytes() == SEEN["shipped"]
        assert s.am.config.stat().st_mode & 0o777 == 0o600
        wait_until(lambda: SEEN["marker"] in s.am.original(), timeout=15, what="old file loaded")
        assert not _scan_tree(s.state, set(), CANARY_HOOK, CANARY_SLACK, BAD_HOOK)
    finally:
        (s.secrets / "cost_webhook_url").write_text(CANARY_HOOK, encoding="utf-8")
