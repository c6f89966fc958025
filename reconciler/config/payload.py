"""The agents' payload schema: the JSON Schema the fleet repo ships for its `config:` maps.

reconciler does not know what a payload means; the repo's schema says, and
its annotations drive behaviour: `x-restart-required: true` (a reload is not
enough), `x-cost-impacting: true` (flagged in diffs, needs review) and
`x-not-secret: true` (a field whose long random-looking strings are not
credentials, so rule secret.entropy leaves them alone).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.secretscan import clip, quoted, shown_key

FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class PayloadSchema:
    """A compiled payload schema and the field paths its annotations mark."""

    schema: dict[str, Any]
    restart_required: frozenset[FieldPath]
    cost_impacting: frozenset[FieldPath]
    validator: Draft202012Validator
    not_secret: frozenset[FieldPath] = frozenset()

    def is_not_secret(self, path: FieldPath) -> bool:
        """Whether the field at `path` (map keys only) or a map holding it is x-not-secret."""
        return any(path[: len(p)] == p for p in self.not_secret)

    def is_restart_required(self, path: FieldPath) -> bool:
        return any(path[: len(p)] == p for p in self.restart_required)

    def is_cost_impacting(self, path: FieldPath) -> bool:
        return any(path[: len(p)] == p for p in self.cost_impacting)

    def errors(self, payload: dict[str, Any]) -> Iterator[tuple[FieldPath, str]]:
        """Each schema violation of a payload: the path of the bad value and a message.

        An unknown key is reported at the key itself (not at the map holding it),
        with the nearest known key as a suggestion.
        """
        for path, message, _ in self.problems(payload):
            yield path, message

    def problems(self, payload: dict[str, Any]) -> Iterator[tuple[FieldPath, str, bool]]:
        """`errors`, each with whether it is a required key that is absent.

        A required key that an unknown key beside it misspells is reported once, as the
        unknown key with its did-you-mean.
        """
        found = sorted(
            self.validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]
        )
        meant: set[FieldPath] = set()
        for err in found:
            known = sorted(err.schema.get("properties") or {}) if _unknown_keys(err) else []
            for key in _unknown_keys(err):
                near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                if near:
                    meant.add((*(str(p) for p in err.absolute_path), near[0]))
        for err in found:
            path = tuple(str(p) for p in err.absolute_path)
            extras = _unknown_keys(err)
            if extras:
                known = sorted(err.schema.get("properties") or {})
                for key in extras:
                    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                    hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(known)}"
                    where = ".".join(map(shown_key, ("config", *path, key)))
                    yield (*path, key), f"{where}: unknown field {quoted(key)}; {hint}", False
                continue
            missing = _missing_key(err)
            if missing is not None and (*path, missing) in meant:
                continue
            if missing is not None:
                # At the key's path, so the line that deleted it (a null) is named if any.
                where = ".".join(map(shown_key, ("config", *path, missing)))
                yield (*path, missing), f"{where}: required, but no layer sets it", True
                continue
            where = ".".join(map(shown_key, ("config", *path)))
            yield path, f"{where}: {_message(err, path)}", False


def _message(err: ValidationError, path: FieldPath) -> str:
    """jsonschema's message with the value it quotes cut (or redacted when secret-looking)."""
    message = err.message
    shown = repr(err.instance)
    if shown in message:
        message = message.replace(shown, quoted(err.instance, path), 1)
    return clip(message, 240)


def _missing_key(err: ValidationError) -> str | None:
    """The property a `required` error is about (None for other errors)."""
    if err.validator != "required" or not isinstance(err.instance, dict):
        return None
    names = err.validator_value if isinstance(err.validator_value, list) else []
    for name in names:
        if isinstance(name, str) and name not in err.instance and repr(name) in err.message:
            return name
    return None


def _unknown_keys(err: ValidationError) -> list[str]:
    """The keys an `additionalProperties: false` error is about (none for other errors)."""
    if err.validator != "additionalProperties" or not isinstance(err.instance, dict):
        return []
    if not isinstance(err.schema, dict) or err.schema.get("additionalProperties") is not False:
        return []
    props = err.schema.get("properties") or {}
    patterns = list(err.schema.get("patternProperties") or {})
    return [
        str(k)
        for k in err.instance
        if k not in props and not any(re.search(p, str(k)) for p in patterns)
    ]


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
        not_secret=frozenset(_annotated(schema, "x-not-secret")),
    )
