"""schemas/lease.schema.json (written by hand) describes the lease file reconciler writes."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from reconciler.engine.boxops import Lease
from reconciler.testing.clock import FakeClock

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "lease.schema.json"


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_lease_written_today_and_an_old_one_validate() -> None:
    lease = Lease.ours("me@here pid 1", "r-1", now=FakeClock().now(), ttl_s=900, fence=3)
    doc = json.loads(lease.to_bytes())
    validator().validate(doc)
    validator().validate({"holder": "a@b pid 7", "rollout_id": "r", "expires_at":
                          "2026-01-01T00:00:00Z"})  # fmt: skip
    assert not validator().is_valid({"holder": "a@b pid 7", "rollout_id": "r"})


def test_every_field_written_is_described() -> None:
    lease = Lease.ours("me@here pid 1", "r-1", now=FakeClock().now(), ttl_s=900, fence=3)
    written = set(json.loads(lease.to_bytes()))
    described = set(json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"])
    assert written == described
