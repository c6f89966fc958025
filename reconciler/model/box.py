"""The box contract: the state stamp and the health answer (schemas in schemas/).

Both are parsed at the edge from bytes fetched off a box, by pure functions;
the core only ever sees these validated models. Paths of the reconciler's
files on a box all derive from the agent's config_path, so that many agents
can share a host (and even a directory) without touching each other's state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler.errors import BoxError

# 2: `fence`, the fencing number of the rollout that wrote the stamp (absent in 1: read as 0).
# 3: `secrets` (per-secret keyed fingerprints of `current` and `next`) and `rotation` (the
#    pending rotations); history entries carry the same for a restore (absent in 2: none).
STAMP_VERSION = 3

Outcome = Literal["applied", "rolled-back"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Contract(BaseModel):
    # Boxes may run newer agents that add fields: tolerate extras, keep them out of the model.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SecretPrint(_Contract):
    """One secret's keyed fingerprints on the box: of `current`, and of `next` when staged."""

    current: str
    next: str | None = None


RotationPhase = Literal["staged", "promoted"]


class RotationMark(_Contract):
    """A rotation of one secret pending on this box, so that every machine sees it."""

    rotation_id: str
    phase: RotationPhase = Field(
        description="staged: `next` holds the new value beside `current`; promoted: the new "
        "value is `current`, the old one is still to be retired (backend, kept copies)"
    )
    old: str | None = Field(default=None, description="keyed fingerprint of the old value")
    new: str | None = Field(default=None, description="keyed fingerprint of the new value")


class StampHistoryEntry(_Contract):
    """One past revision applied to the box."""

    revision: str
    config_sha256: Sha256
    outcome: Outcome
    applied_at: str
    rollout_id: str
    secrets_fingerprint: str | None = None
    secrets: dict[str, SecretPrint] = Field(default_factory=dict)
    rotation: dict[str, RotationMark] = Field(default_factory=dict)


class Stamp(_Contract):
    """The state stamp, written atomically beside the config after every apply or rollback."""

    stamp_version: int = STAMP_VERSION
    fleet_id: str
    agent: str
    revision: str = Field(description="git sha, or sha+dirty-<hash> from a dirty tree")
    config_sha256: Sha256
    renderer_version: str
    applied_at: str = Field(description="RFC 3339 UTC time of the write")
    rollout_id: str
    outcome: Outcome
    history: list[StampHistoryEntry] = Field(default_factory=list)
    secrets_fingerprint: str | None = None
    blocked_revision: str | None = Field(
        default=None, description="A revision rolled back automatically; not retried at head."
    )
    fence: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="The fencing number of the rollout that wrote this stamp: a writer whose "
        "number is lower refuses to touch the box (absent in stamp_version 1: 0)",
    )
    secrets: dict[str, SecretPrint] = Field(
        default_factory=dict,
        description="Per secret, keyed fingerprints of its `current` and `next` values in the "
        "box's secrets file (empty without the fleet key; absent before stamp_version 3)",
    )
    rotation: dict[str, RotationMark] = Field(
        default_factory=dict, description="Secret name -> the rotation pending on this box."
    )

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, UTF-8, trailing newline."""
        return (json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n").encode()


class Health(_Contract):
    """The health answer of an agent (HTTP endpoint or health command)."""

    alive: bool
    heartbeat_age_s: Annotated[float, Field(ge=0)]
    loaded_revision: str | None = None
    loaded_sha256: str | None = None
    agent_version: str | None = None
    tasks_processed: Annotated[int, Field(ge=0)]
    queue_depth: Annotated[int, Field(ge=0)]
    uptime_s: Annotated[float, Field(ge=0)]


class ContractError(BoxError, ValueError):
    """A box answered with bytes that break the contract."""


def parse_stamp(data: bytes) -> Stamp:
    """A stamp from the bytes of the stamp file; ContractError when it is not one."""
    try:
        return Stamp.model_validate_json(data)
    except ValidationError as exc:
        raise ContractError(f"invalid state stamp: {exc.errors()[0]['msg']}") from None


def parse_health(data: bytes) -> Health:
    """A health answer from its JSON bytes; ContractError when it is not one."""
    try:
        return Health.model_validate_json(data)
    except ValidationError as exc:
        raise ContractError(f"invalid health answer: {exc.errors()[0]['msg']}") from None


# The file in a box's lease directory that names the run holding it.
LEASE_FILE: Final = "lease.json"


@dataclass(frozen=True, slots=True)
class BoxPaths:
    """Where reconciler keeps its files on a box, all beside the agent's config file."""

    config: PurePosixPath
    secrets: PurePosixPath

    @classmethod
    def of(cls, config_path: str, secrets_path: str | None = None) -> BoxPaths:
        config = PurePosixPath(config_path)
        secrets = (
            PurePosixPath(secrets_path)
            if secrets_path
            else config.with_name(f"{config.stem}.secrets.json")
        )
        return cls(config, secrets)

    @property
    def stamp(self) -> PurePosixPath:
        return self.config.with_name(f"{self.config.name}.stamp.json")

    @property
    def history_dir(self) -> PurePosixPath:
        return self.config.with_name(f"{self.config.name}.history")

    def history_file(self, sha256: str) -> PurePosixPath:
        return self.history_dir / sha256

    @property
    def lease_dir(self) -> PurePosixPath:
        return self.config.with_name(f"{self.config.name}.lease")

    @property
    def lease_file(self) -> PurePosixPath:
        """The lease a run holds while it changes the box (mkdir of lease_dir takes it)."""
        return self.lease_dir / LEASE_FILE


# The agent's Prometheus exposition (box contract). Counters carry the `_total` suffix;
# the latency histogram has `_bucket{le=...}`, `_sum` and `_count`. Every series has an
# `agent="<name>"` label.
METRIC_TASKS = "tasks_total"
METRIC_TASK_ERRORS = "task_errors_total"
# task_errors_total may be split by a `reason` label; consumers sum every reason for the
# error rate. reason="auth" counts tasks a credential was refused for (the auth gate's
# series): an agent exports it from the start, at 0, so its absence means "not known".
LABEL_ERROR_REASON = "reason"
ERROR_REASON_AUTH = "auth"
METRIC_TOKENS_IN = "tokens_in_total"
METRIC_TOKENS_OUT = "tokens_out_total"
METRIC_COST = "cost_usd_total"
METRIC_LATENCY = "task_latency_seconds"
METRIC_MEMORY = "memory_bytes"
METRIC_QUEUE = "queue_depth"
# The agent's memory limit (a gauge, bytes): memory_bytes / memory_limit_bytes is its use ratio.
METRIC_MEMORY_LIMIT = "memory_limit_bytes"
# Unix time (seconds) of the agent's last heartbeat (a gauge); its age is time() minus it.
METRIC_HEARTBEAT = "heartbeat_timestamp_seconds"
# The model cost of each task (a histogram in USD: `_bucket{le=...}`, `_sum`, `_count`).
METRIC_TASK_COST = "task_cost_usd"
# Tasks that arrived (queued) for the agent, whether processed yet or not (a counter).
METRIC_ARRIVALS = "task_arrivals_total"
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
COST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
