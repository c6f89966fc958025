"""docs/rules.md is generated from RULES and must not go stale."""

from __future__ import annotations

from pathlib import Path

from reconciler.config.errors import RULES
from reconciler.config.rules_doc import render
from reconciler.devtools.rules_doc import DOC, main, stale

ROOT = Path(__file__).resolve().parents[2]


def test_rules_doc_is_not_stale() -> None:
    """docs/rules.md is exactly what `python -m reconciler.devtools.rules_doc` writes."""
    assert not stale(ROOT), "run: python -m reconciler.devtools.rules_doc"
    assert main(["--check", "--root", str(ROOT)]) == 0


def test_every_rule_is_listed_with_its_meaning() -> None:
    """Each rule id appears once in the table, with its RULES text."""
    text = render()
    for rule, meaning in RULES.items():
        assert text.count(f"| `{rule}` |") == 1
        assert f"| `{rule}` | {meaning} |" in text


def test_check_fails_when_the_doc_differs(tmp_path: Path) -> None:
    """--check exits 1 for a hand-edited or missing doc; writing fixes it."""
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / DOC).write_text(render().replace("alias bomb", "alias"), encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 1
