"""Table cases: pairs of payloads and the exact changes the diff reports (tests/cases/diff)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.config.payload import PayloadSchema, load_payload_schema
from reconciler.diff.agent import payload_changes

from .conftest import EXAMPLE

CASES = sorted((Path(__file__).resolve().parents[1] / "cases" / "diff").glob("*.json"))


@pytest.fixture(scope="module")
def schema() -> PayloadSchema:
    path = EXAMPLE / "schemas" / "agent.schema.json"
    return load_payload_schema(str(path), path.read_bytes())


def _flags(change: Any) -> list[str]:
    pairs = (("cost", change.cost_impacting), ("restart", change.restart_required))
    return [name for name, on in (*pairs, ("secret", change.secret)) if on]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diff_case(case: Path, schema: PayloadSchema) -> None:
    """Each case's payload pair gives exactly its expected changes, in order."""
    doc = json.loads(case.read_text(encoding="utf-8"))
    changes = payload_changes(doc["old"], doc["new"], schema)
    got = [
        {
            "path": list(c.path),
            "kind": str(c.kind),
            "old": c.old,
            "new": c.new,
            "flags": _flags(c),
        }
        for c in changes
    ]
    assert got == doc["expected"], doc["description"]


def test_there_are_cases() -> None:
    """The case directory is found and not empty."""
    assert len(CASES) >= 20
