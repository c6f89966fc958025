"""The agents' payload schema: the JSON Schema the fleet repo ships for its `config:` maps.

reconciler does not know what a payload means; the repo's schema says, and
its annotations drive behaviour: `x-restart-required: true` (a reload is not
enough) and `x-cost-impacting: true` (flagged in diffs, needs review).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from reconciler.config.errors import ConfigError, SourceSpan

FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class PayloadSchema:
    """A compiled payload schema and the field paths its annotations mark."""

    schema: dict[str, Any]
    restart_required: frozenset[FieldPath]
    cost_impacting: frozenset[FieldPath]
    validator: Draft202012Validator

    def is_restart_required(self, path: FieldPath) -> bool:
        return any(path[: len(p)] == p for p in self.restart_required)

    def is_cost_impacting(self, path: FieldPath) -> bool:
        return any(path[: len(p)] == p for p in self.cost_impacting)

    def errors(self, payload: dict[str, Any]) -> Iterator[tuple[FieldPath, str]]:
        """Each schema violation of a payload: the path of the bad value and a message."""
        for err in sorted(self.validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
            path = tuple(str(p) for p in err.absolute_path)
            where = ".".join(("config", *path))
            yield path, f"{where}: {err.message}"


def _annotated(schema: dict[str, Any], key: str, path: FieldPath = ()) -> Iterator[FieldPath]:
    if schema.get(key) is True and path:
        yield path
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _annotated(sub, key, (*path, name))


def load_payload_schema(file: str, data: bytes) -> PayloadSchema:
    """Parse and check the repo's payload schema; ConfigError when it is not a valid schema."""
    try:
        schema = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        col = getattr(exc, "colno", 1)
        raise ConfigError(
            SourceSpan(file, line, col), "payload.schema-invalid", f"not valid JSON: {exc}"
        ) from None
    if not isinstance(schema, dict):
        raise ConfigError(
            SourceSpan(file, 1, 1), "payload.schema-invalid", "a schema is a JSON object"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(
            SourceSpan(file, 1, 1),
            "payload.schema-invalid",
            f"not a valid JSON Schema: {exc.message}",
        ) from None
    return PayloadSchema(
        schema=schema,
        restart_required=frozenset(_annotated(schema, "x-restart-required")),
        cost_impacting=frozenset(_annotated(schema, "x-cost-impacting")),
        validator=Draft202012Validator(schema),
    )
