"""Registry of the models behind each `--format json` output, for schemas/."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

OUTPUT_SCHEMAS: Final[dict[str, type[BaseModel]]] = {}
