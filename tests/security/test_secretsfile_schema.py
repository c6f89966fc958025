"""The box's secrets file as written validates against schemas/secrets-file.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from reconciler.secrets.secretsfile import Slot, parse_secrets_file, render_secrets_file

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "secrets-file.schema.json"


def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_rendered_secrets_files_validate() -> None:
    """current only, current and next, and no secret at all: each validates and reads back."""
    v = _validator()
    for slots in (
        {"anthropic_api_key": Slot("sk-one")},
        {"anthropic_api_key": Slot("sk-one", "sk-two"), "kb_token": Slot("kb-x")},
        {},
    ):
        data = render_secrets_file(slots)
        doc = json.loads(data)
        assert list(v.iter_errors(doc)) == [], sorted(doc)
        assert parse_secrets_file(data) == slots


def test_the_schema_refuses_what_the_reader_refuses() -> None:
    """No `current`, a non-string `next`, an unknown field, a bad name: invalid."""
    v = _validator()
    for doc in (
        {"k": {"next": "x"}},
        {"k": {"current": "x", "next": 3}},
        {"k": {"current": "x", "previous": "y"}},
        {"Bad-Name": {"current": "x"}},
    ):
        assert list(v.iter_errors(doc)), doc
