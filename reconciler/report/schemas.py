"""Registry of the models behind each `--format json` output, for schemas/."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from reconciler.report.diff_json import DiffReport

OUTPUT_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "diff.schema.json": DiffReport,
}
