"""The JSON Schemas generated from the models: for editors, for boxes, and checked for staleness.

Usage: python -m reconciler.devtools.schemas [--check] [--root DIR]

Writes (or checks) schemas/ and the example repo's copy of the config-file schemas,
which its YAML modelines point at. `expected(root)` gives every file's text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.capacity.report import CapacityReport
from reconciler.model.agent import ShardFile, TierFile
from reconciler.model.box import Health, Stamp
from reconciler.model.fleet import AlertsFile, FleetFile, SecretsIndex, UsageFile
from reconciler.plan.model import Plan
from reconciler.report.schemas import OUTPUT_SCHEMAS

CONFIG_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "fleet.schema.json": FleetFile,
    "layer.schema.json": TierFile,
    "shard.schema.json": ShardFile,
    "secrets.schema.json": SecretsIndex,
    "alerts.schema.json": AlertsFile,
    "usage.schema.json": UsageFile,
}
BOX_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "stamp.schema.json": Stamp,
    "health.schema.json": Health,
}


class PlanEvent(BaseModel):
    """The first JSON line of `apply --format json` (cli/progress.py `ApplyScreen.show`): the
    plan as one document, ahead of the event lines (schemas/events.schema.json)."""

    model_config = ConfigDict(extra="forbid", title="PlanEvent")

    event: Literal["plan"] = Field(description="always `plan`: this line is the plan")
    plan: Plan = Field(description="the plan apply carries out (schemas/plan.schema.json)")


def extra_schemas() -> dict[str, dict[str, object]]:
    """Schemas of JSON outputs that live outside model/ (registered by their modules)."""
    models: dict[str, type[BaseModel]] = {
        **OUTPUT_SCHEMAS,
        "capacity.schema.json": CapacityReport,
        "plan-event.schema.json": PlanEvent,
    }
    return {name: model.model_json_schema(mode="serialization") for name, model in models.items()}


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


def stale(root: Path) -> list[Path]:
    """Generated files that are missing or differ from what the models give."""
    return [p for p, text in expected(root).items() if not p.exists() or p.read_text() != text]


def main(argv: list[str]) -> int:
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else Path.cwd()
    if "--check" in argv:
        bad = stale(root)
        for p in bad:
            print(f"{p}: stale; run python -m reconciler.devtools.schemas", file=sys.stderr)
        return 1 if bad else 0
    for path, text in expected(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
