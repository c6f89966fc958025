"""Journey: a demo rollback leaves a self-contained HTML report that a browser really draws.

A small demo fleet (gates on, the demo's short soak), a bad change (tier fast's prompt
poisoned: half its tasks fail), `apply` -> rolled back (exit 3). Beside the incident's
markdown and JSON there is STATE/incidents/<rollout>.html. Headless Chromium (Debian's
`chromium`, scripts/test installs it) screenshots it: the picture is not blank and holds
the charts' canary red. The data embedded in the page (`<script type="application/json"
id="report-data">`) matches the incident JSON written from the same run: the failing
gate's canary and baseline series, its threshold, the finish event, the commit and the
next command (`git revert <sha>`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from reconciler.report.charts import PALETTE
from reconciler.testing.journeys import Demo, demo_fleet

pytestmark = pytest.mark.timeout(150)

POISON = "!!poison!! Answer in three sentences."  # demo/workload.py: half the tasks fail
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_fleet(tmp_path_factory.mktemp("html") / "demo", 4) as d:
        yield d


def _embedded(page: str) -> dict[str, object]:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m, "no embedded report data"
    doc = json.loads(m.group(1))
    assert isinstance(doc, dict)
    return doc


def _pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    raw = image.tobytes()
    return [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]


def _screenshot(page: Path, tmp: Path) -> Image.Image:
    assert CHROMIUM, "chromium is not installed (scripts/test installs Debian's chromium)"
    png = tmp / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp / 'profile'}", f"--screenshot={png}",
         "--window-size=1200,2000", page.as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Image.open(png).convert("RGB")


def test_rollback_html_report_renders_with_its_data(demo: Demo, tmp_path: Path) -> None:
    state = tmp_path / "state"
    bad = demo.commit_tier_config("fast", "prompt", POISON, "tier fast: a poisoned prompt")
    done = demo.reconcile("apply", "--yes", "--state-dir", state, timeout=120)
    done.expect(3, r"rollback").refuse("Traceback")
    pages = sorted((state / "incidents").glob("*.html"))
    assert len(pages) == 1, sorted(p.name for p in (state / "incidents").iterdir())
    page = pages[0]
    assert page.with_suffix(".md").exists() and page.with_suffix(".json").exists()
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    assert "https://" not in text

    data = _embedded(text)
    incident = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["rollout_id"] == incident["rollout_id"]
    assert data["commit"] == bad and f"git revert {bad}" in data["next"]
    assert data["timeline"][-1]["kind"] == "finish"
    # The failing gate's verdict in the incident JSON is the last sample of its series.
    failed = [
        (c["wave"], f)
        for c in incident["failed_checks"]
        if c["kind"] == "gates.failed"
        for f in c["figures"]
        if "canary" in f and not f["ok"]
    ]
    assert failed, incident["failed_checks"]
    series = {(g["wave"], g["gate"]): g for g in data["gates"]}
    for wave, figure in failed:
        g = series[(wave, figure["gate"])]
        last = g["samples"][-1]
        assert (last["canary"], last["baseline"]) == (figure["canary"], figure["baseline"])
        assert g["threshold"] == figure["threshold"] and g["verdict"] == "fail"
    # Every gates.waiting sample of the incident's timeline is a point of the series too.
    waiting = sum(
        1 for e in incident["timeline"] if e["kind"] == "gates.waiting"
        for f in e["pending"] if "canary" in f
    )  # fmt: skip
    verdicts = sum(
        1 for e in incident["timeline"] if e["kind"] in ("gates.failed", "gates.passed")
        for f in e["figures"] if "canary" in f
    )  # fmt: skip
    assert sum(len(g["samples"]) for g in data["gates"]) == waiting + verdicts
    statuses = {b["agent"]: b["status"] for b in data["boxes"]}
    assert {r["agent"] for r in incident["restored"]} <= set(statuses)

    shot = _screenshot(page, tmp_path)
    small = shot.resize((300, 500))
    pixels = _pixels(small)
    non_white = sum(1 for p in pixels if min(p) < 235)
    assert non_white > len(pixels) * 0.03, f"blank page? {non_white} of {len(pixels)} inked"
    assert len(set(pixels)) > 30, "hardly any colours: no charts drawn?"
    red = tuple(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
    full = _pixels(shot)
    assert any(sum(abs(a - b) for a, b in zip(p, red, strict=True)) < 40 for p in full), (
        "no canary red on the page: the gate charts were not drawn"
    )
    demo.revert_head()


def test_a_finished_rollout_gets_its_report_too(demo: Demo, tmp_path: Path) -> None:
    """A change that passes its gates: exit 0 and STATE/reports/<rollout>.html and .json,
    the page's embedded data equal to the JSON, outcome done, nothing to run next."""
    state = tmp_path / "state"
    head = demo.commit_tier_config("fast", "max_tokens", 400, "tier fast: shorter answers")
    demo.reconcile("apply", "--yes", "--state-dir", state, timeout=120).expect(0)
    pages = sorted((state / "reports").glob("*.html"))
    assert len(pages) == 1
    data = _embedded(pages[0].read_text(encoding="utf-8"))
    assert data == json.loads(pages[0].with_suffix(".json").read_text(encoding="utf-8"))
    assert data["outcome"] == "done" and data["commit"] == head and data["next"] == []
    assert data["timeline"][-1]["kind"] == "finish"
    assert data["gates"] and all(g["verdict"] == "pass" for g in data["gates"])
    assert {b["agent"] for b in data["boxes"]} == set(demo.tier("fast"))
    # The boxes still ran the seed (the demo's head upgrade of the model rides along).
    for change in data["changes"]:
        assert "max_tokens" in change["fields"] and "max_tokens" in change["cost_impacting"]
        assert change["from_revision"] == demo.first_commit and change["to_revision"] == head
        where = {d["path"]: d for d in change["diff"]}
        assert where["max_tokens"]["source"].startswith("agents/tier-fast.yaml:"), where
        assert where["max_tokens"]["new"] == "400"
    assert not (state / "incidents").exists()
