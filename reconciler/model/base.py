"""The base of every reconciler model: closed (unknown keys rejected) and immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Closed(BaseModel):
    """A closed model: unknown keys are errors, values are frozen, no coercion of strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
