"""docs/alerts.md's compiled examples are the compiler's exact bytes (tests/alerts/golden/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.alerts import compile_alerts
from reconciler.alerts.catalogue import CATALOGUE
from reconciler.config.repo import load_repo

GOLDEN = Path(__file__).parent / "golden"
DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
OUTPUTS = ("acme-support-examples.rules.yml", "acme-support-recording.rules.yml")


@pytest.fixture(scope="module")
def compiled(example_files: dict[str, bytes]) -> dict[str, bytes]:
    files = {k: v for k, v in example_files.items() if not k.startswith("alerts/")}
    files["alerts/examples.yaml"] = (GOLDEN / "examples.yaml").read_bytes()
    done = compile_alerts(load_repo(files))
    return {**done.rule_files, "alertmanager.yml": done.alertmanager}


@pytest.mark.parametrize("name", [*OUTPUTS, "alertmanager.yml"])
def test_the_compiler_writes_the_golden_bytes(compiled: dict[str, bytes], name: str) -> None:
    assert compiled[name] == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize("name", ["examples.yaml", *OUTPUTS, "alertmanager.yml"])
def test_the_doc_shows_each_golden_file_verbatim(name: str) -> None:
    text = (GOLDEN / name).read_text(encoding="utf-8")
    assert f"```yaml\n{text}```" in DOC.read_text(encoding="utf-8")


def test_the_doc_lists_every_catalogue_metric() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for name in CATALOGUE:
        assert f"| `{name}` |" in doc
