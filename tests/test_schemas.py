"""JSON Schemas: generated from the models, not stale, and the example repo validates against them.

Editors read the `# yaml-language-server: $schema=...` modeline at the top of each
example file; the schema it names must exist and accept the file, and must refuse
what `reconcile validate` refuses for its shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from config.corpus import BAD, content, load_case
from jsonschema import Draft202012Validator

from reconciler.config.load import load_yaml
from reconciler.devtools.schemas import CONFIG_SCHEMAS, expected, main, stale
from reconciler.report.schemas import OUTPUT_SCHEMAS
from reconciler.rollout.reporter import NOTE_KINDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fleet-config-example"
# alerts/tests/ holds promtool unit tests (docs/alerts.md), not reconciler's config files.
EXAMPLE_YAML = sorted(
    p for p in EXAMPLE.rglob("*.yaml") if "tests" not in p.relative_to(EXAMPLE).parts[:-1]
)
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")
SCHEMA_OF = {  # the schema an editor uses for each kind of config file
    "fleet.yaml": "fleet.schema.json",
    "agents/": "layer.schema.json",
    "shards/": "shard.schema.json",
    "secrets/": "secrets.schema.json",
    "alerts/": "alerts.schema.json",
    "usage.yaml": "usage.schema.json",
}


def validator(path: Path) -> Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_no_generated_schema_is_stale() -> None:
    """`python -m reconciler.devtools.schemas --check` finds nothing to regenerate."""
    assert stale(ROOT) == []
    assert main(["--check", "--root", str(ROOT)]) == 0


def test_check_reports_a_stale_schema(tmp_path: Path) -> None:
    """--check exits 1 when a generated file is missing or differs."""
    for path, text in expected(ROOT).items():
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    assert stale(tmp_path) == []
    (tmp_path / "schemas" / "fleet.schema.json").write_text("{}\n")
    assert stale(tmp_path) == [tmp_path / "schemas" / "fleet.schema.json"]
    assert main(["--check", "--root", str(tmp_path)]) == 1


def test_every_config_schema_is_a_valid_json_schema() -> None:
    """Each generated config schema passes the 2020-12 metaschema."""
    for name in CONFIG_SCHEMAS:
        validator(EXAMPLE / "schemas" / name)
    validator(EXAMPLE / "schemas" / "agent.schema.json")


@pytest.mark.parametrize(
    "path", EXAMPLE_YAML, ids=[str(p.relative_to(EXAMPLE)) for p in EXAMPLE_YAML]
)
def test_example_file_has_a_modeline_to_an_existing_schema_that_accepts_it(path: Path) -> None:
    """Line 1 names a schema beside the repo; the file validates against it."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = MODELINE.match(first)
    assert m, f"{path}: first line is not a yaml-language-server modeline: {first!r}"
    schema_path = (path.parent / m["path"]).resolve()
    assert schema_path.is_file(), f"{path}: modeline names {m['path']}, which does not exist"
    rel = path.relative_to(EXAMPLE).as_posix()
    kind = next(v for k, v in SCHEMA_OF.items() if rel == k or rel.startswith(k))
    assert schema_path.name == kind, f"{rel} should point at {kind}"
    value = load_yaml(rel, path.read_bytes()).value
    errors = [e.message for e in validator(schema_path).iter_errors(value)]
    assert errors == []


SHAPE_CASES = sorted(
    p
    for p in BAD.glob("schema.*.json")
    if p.stem not in {"schema.required--agent-host", "schema.type--file-not-a-map"}
)


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[p.stem for p in SHAPE_CASES])
def test_editor_schema_refuses_what_validate_refuses_for_shape(case: Path) -> None:
    """Each shape error of the corpus is also an error for the JSON Schema an editor uses."""
    doc = load_case(case)
    for rel, spec in doc["files"].items():
        kind = next(v for k, v in SCHEMA_OF.items() if rel == k or rel.startswith(k))
        value: Any = load_yaml(rel, content(spec)).value
        errors = list(validator(EXAMPLE / "schemas" / kind).iter_errors(value))
        assert errors, f"{case.stem}: {rel} passes {kind} but validate refuses it"


def test_every_output_schema_is_a_valid_versioned_json_schema() -> None:
    """Each JSON output's schema passes the 2020-12 metaschema; a document schema pins its
    version field (status_version, history_version, plan_version, incident_version)."""
    for name in OUTPUT_SCHEMAS:
        schema = validator(ROOT / "schemas" / name).schema
        version = [k for k in schema.get("properties", {}) if k.endswith("_version")]
        if name not in {"events.schema.json", "diff.schema.json"}:
            assert version, f"{name} has no *_version property"


def test_events_schema_accepts_every_note_kind_and_refuses_a_bad_line() -> None:
    """Every kind the driver notes is a valid `event`; a line without one is refused."""
    events = validator(ROOT / "schemas" / "events.schema.json")
    for kind in NOTE_KINDS:
        assert list(events.iter_errors({"event": kind, "wave": 1})) == [], kind
    assert list(events.iter_errors({"wave": 1}))
    assert list(events.iter_errors({"event": "Not A Kind"}))
