"""`reconcile alerts render` and `reconcile alerts test` through the CLI, with the real
promtool and amtool (Debian's prometheus and prometheus-alertmanager; scripts/test
installs both)."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "fleet-config-example"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example whose failures are in alerts/health.yaml: its cost tests (the
    slow ones, hours of series) are left out to keep the run short."""
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLE, copy)
    (copy / "alerts" / "tests" / "cost.yaml").unlink()
    return copy


def test_the_example_passes_check_test_and_amtool() -> None:
    code, out, err = run("alerts", "test", "--repo", str(EXAMPLE))
    assert code == 0, out + err
    assert out.splitlines() == [
        "ok: promtool check rules",
        "ok: promtool test rules",
        "ok: amtool check-config",
    ]
    assert "2 test file(s)" in err


def test_an_alert_that_no_longer_fires_fails_its_promtool_test(repo: Path) -> None:
    health = repo / "alerts" / "health.yaml"
    health.write_text(health.read_text().replace("above: 0.03", "above: 0.5"))
    code, out, _ = run("alerts", "test", "--repo", str(repo))
    assert code == 1
    assert "ok: promtool check rules" in out
    assert "FAILED: promtool test rules" in out
    assert "alerts/tests/health.yaml" in out
    assert "alertname: TierErrorRateHigh" in out
    assert "Traceback" not in out


def test_broken_raw_promql_is_refused_by_promtool_check(repo: Path) -> None:
    health = repo / "alerts" / "health.yaml"
    health.write_text(
        health.read_text().replace("sum without (instance, job, reason) (rate(tasks_total[10m]))",
                                   "sum without (instance, job, reason) (rate(tasks_total[10m])")
    )  # fmt: skip
    code, out, _ = run("alerts", "test", "--repo", str(repo))
    assert code == 1
    assert "FAILED: promtool check rules" in out
    assert "acme-support-health.rules.yml" in out


def test_a_missing_promtool_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run(
        "alerts", "test", "--repo", str(EXAMPLE), "--promtool", str(tmp_path / "promtool")
    )
    assert code == 1
    assert "install Debian's prometheus package" in err
    assert "Traceback" not in out + err


def test_render_writes_deterministic_files_and_a_private_alertmanager_yml(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, listed, err = run("alerts", "render", "--repo", str(EXAMPLE), "--out", str(out_dir))
    assert code == 0, err
    assert listed.splitlines()[-1] == str(out_dir / "alertmanager.yml")
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        "acme-support-cost.rules.yml",
        "acme-support-health.rules.yml",
        "acme-support-recording.rules.yml",
        "alertmanager.yml",
    ]
    assert stat.S_IMODE((out_dir / "alertmanager.yml").stat().st_mode) == 0o600
    assert "group reconciler/acme-support/cost: " in err
    first = {n: (out_dir / n).read_bytes() for n in names}
    code, _, _ = run("alerts", "render", "--repo", str(EXAMPLE), "--out", str(out_dir))
    assert code == 0
    assert {n: (out_dir / n).read_bytes() for n in names} == first


def test_help_has_an_example() -> None:
    for cmd in ("render", "test"):
        code, out, _ = run("alerts", cmd, "--help")
        assert code == 0
        assert "Example:  reconcile alerts" in out
