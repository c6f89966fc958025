"""Registry of the models behind each `--format json` output, for schemas/."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from reconciler.model.events import Event, Incident
from reconciler.plan.model import Plan
from reconciler.report.diff_json import DiffReport
from reconciler.report.history import HistoryReport
from reconciler.report.status import StatusReport

OUTPUT_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "diff.schema.json": DiffReport,
    "events.schema.json": Event,
    "incident.schema.json": Incident,
    "plan.schema.json": Plan,
    "history.schema.json": HistoryReport,
    "status.schema.json": StatusReport,
}
