"""JSON Schemas generated from the models: for editors, for boxes, and checked for staleness.

Pure: `expected(root)` gives every file's text; `python -m reconciler.devtools.schemas
[--check]` writes (or checks) schemas/ and the example repo's copy of the config-file
schemas, which its YAML modelines point at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from pydantic import BaseModel

from reconciler.model.agent import ShardFile, TierFile
from reconciler.model.box import Health, Stamp
from reconciler.model.fleet import AlertsFile, FleetFile, SecretsIndex
from reconciler.report.schemas import OUTPUT_SCHEMAS

CONFIG_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "fleet.schema.json": FleetFile,
    "layer.schema.json": TierFile,
    "shard.schema.json": ShardFile,
    "secrets.schema.json": SecretsIndex,
    "alerts.schema.json": AlertsFile,
}
BOX_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "stamp.schema.json": Stamp,
    "health.schema.json": Health,
}


def extra_schemas() -> dict[str, dict[str, object]]:
    """Schemas of JSON outputs that live outside model/ (registered by their modules)."""
    return {
        name: model.model_json_schema(mode="serialization")
        for name, model in OUTPUT_SCHEMAS.items()
    }


def render(model: type[BaseModel], name: str) -> str:
    schema = model.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": name, **schema}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def expected(root: Path) -> dict[Path, str]:
    """Every generated schema file, keyed by its path under `root` (the project checkout)."""
    out: dict[Path, str] = {}
    for name, model in {**CONFIG_SCHEMAS, **BOX_SCHEMAS}.items():
        out[root / "schemas" / name] = render(model, name)
    for name, model in CONFIG_SCHEMAS.items():
        out[root / "fleet-config-example" / "schemas" / name] = render(model, name)
    for name, schema in extra_schemas().items():
        body = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": name, **schema}
        out[root / "schemas" / name] = json.dumps(body, indent=2) + "\n"
    return out
