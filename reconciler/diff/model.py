"""The fleet diff as data: what changes, per agent and field, and why each change matters.

A `FleetDiff` is built by the pure core (diff/fleet.py) from two loaded repos
(pull-request mode) or from a repo and the live boxes (live mode); reports
(report/diff_*.py) only read it. The same models are the `--format json`
output, so their JSON Schema is schemas/diff.schema.json.

Values are JSON values as parsed from YAML. Secret values never enter these
models: a secret in config is a `{secret: NAME}` reference (its name is shown),
and the secrets file shows up only as a short keyed fingerprint.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from reconciler.model.live import SecretsCheck

FieldPath = tuple[str, ...]
REDACTED = "<redacted>"
# [access] fields whose change makes apply write the agent's files elsewhere (diff/access.py).
MOVES = frozenset({"config_path", "secrets_path"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChangeKind(enum.StrEnum):
    """How one field changed."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    TYPE_CHANGED = "type-changed"


class AgentStatus(enum.StrEnum):
    """How one agent stands between the two sides."""

    ADDED = "added"  # new in the repo, or an unmanaged box (the first apply adopts it)
    REMOVED = "removed"  # gone from the repo (PR), or an orphan box stamped for this fleet
    CHANGED = "changed"  # its payload changes
    DRIFTED = "drifted"  # the file on the box differs from its stamp: a hand edit
    UNKNOWN = "unknown"  # could not be read; `reason` says why
    FOREIGN = "foreign"  # stamped for another fleet or agent: refused
    UNCHANGED = "unchanged"  # no payload change (settings may still change)


ROLLOUT_STATUSES = frozenset(
    {AgentStatus.ADDED, AgentStatus.REMOVED, AgentStatus.CHANGED, AgentStatus.DRIFTED}
)
PROBLEM_STATUSES = frozenset({AgentStatus.UNKNOWN, AgentStatus.FOREIGN})


class FieldChange(_Frozen):
    """One field of one agent: old -> new, where the new value was set, and its flags."""

    path: FieldPath = Field(description="Field path; payload paths omit the leading 'config'.")
    kind: ChangeKind
    old: JsonValue = Field(default=None, description="Absent (null) when kind is 'added'.")
    new: JsonValue = Field(default=None, description="Absent (null) when kind is 'removed'.")
    source: str | None = Field(
        default=None, description="file:line that set the new value (or removed it)."
    )
    old_source: str | None = Field(default=None, description="file:line of the old value.")
    cost_impacting: bool = False
    restart_required: bool = False
    secret: bool = Field(
        default=False, description="A secret reference: only its name is shown, never a value."
    )
    access: bool = Field(
        default=False,
        description="[access]: where or how reconciler connects, what it runs, or the review "
        "rules (diff/access.py).",
    )

    @property
    def moves(self) -> bool:
        """An [access] change of config_path or secrets_path: apply writes to the new path."""
        return self.access and len(self.path) == 1 and self.path[0] in MOVES

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


class SecretsChange(_Frozen):
    """The box's secrets file, by fingerprint only: 'changed' and two short HMACs."""

    check: SecretsCheck
    old: str | None = Field(default=None, description="Fingerprint now (never a value).")
    new: str | None = Field(default=None, description="Fingerprint wanted (never a value).")

    @property
    def changed(self) -> bool:
        return self.check in (SecretsCheck.CHANGED, SecretsCheck.MISSING)


class CostEstimate(_Frozen):
    """What a change set does to one agent's cost, in US dollars; None figures mean no honest
    estimate is possible (`note` says why). A month is 730 hours (as cloud bills count)."""

    ratio: float | None = Field(default=None, description="New/old price per token, if known.")
    now_per_day: float | None = Field(default=None, description="USD per day now.")
    new_per_day: float | None = Field(default=None, description="USD per day after the change.")
    delta_per_day: float | None = Field(default=None, description="Estimated USD/day change.")
    now_per_month: float | None = Field(default=None, description="now_per_day x 730 h / 24.")
    new_per_month: float | None = Field(default=None, description="new_per_day x 730 h / 24.")
    delta_per_month: float | None = Field(default=None, description="delta_per_day x 730 h / 24.")
    source: str | None = Field(
        default=None,
        description="Where the traffic figure comes from and over what window (live metrics, "
        "Prometheus, usage.yaml, --costs).",
    )
    prices: str | None = Field(
        default=None, description="Which price table priced it ('example prices dated ...')."
    )
    missing_models: tuple[str, ...] = Field(
        default=(), description="Models the price table lacks (add them to fleet.yaml prices)."
    )
    caveat: str | None = Field(
        default=None, description="What the figure leaves out (fields that change traffic)."
    )
    note: str = Field(description="How the figure was made, or why there is none.")


class CostTotal(_Frozen):
    """Summed estimates of a group of agents or of the whole diff (USD; month = 730 h)."""

    now_per_day: float
    new_per_day: float
    delta_per_day: float
    now_per_month: float
    new_per_month: float
    delta_per_month: float
    estimated: int = Field(description="Agents with a figure, summed here.")
    without: int = Field(description="Cost-impacting agents with no figure (not in the sums).")
    sources: tuple[str, ...] = Field(default=(), description="Traffic sources and windows used.")
    prices: str | None = Field(default=None, description="The price table used.")
    missing_models: tuple[str, ...] = Field(
        default=(), description="Models to add to fleet.yaml `prices.models`."
    )


class AgentDiff(_Frozen):
    """One agent's difference: its state, payload changes, settings changes, secrets, cost."""

    agent: str
    status: AgentStatus
    tier: str | None = None
    shard: str | None = None
    reason: str | None = Field(default=None, description="Why unknown/foreign/adopted/drifted.")
    format_only: bool = Field(
        default=False, description="The bytes differ but every field is equal (key order, style)."
    )
    changes: tuple[FieldChange, ...] = Field(default=(), description="Payload changes.")
    settings: tuple[FieldChange, ...] = Field(
        default=(), description="reconciler's other own fields (labels, timeouts): no rollout."
    )
    access: tuple[FieldChange, ...] = Field(
        default=(),
        description="[access]: reconciler's own fields saying where and how it connects and "
        "what it runs (host, port, user, key, known_hosts, config_path, secrets_path, "
        "health_url, metrics_url, commands); a config_path or secrets_path change is a rollout.",
    )
    secrets: SecretsChange | None = None
    cost: CostEstimate | None = None

    @property
    def cost_impacting(self) -> bool:
        return any(c.cost_impacting for c in self.changes)

    @property
    def restart_required(self) -> bool:
        """A running agent must restart (a new agent starts, a removed one stops: neither)."""
        if self.status is AgentStatus.REMOVED:
            return False
        if self.status is AgentStatus.ADDED and self.reason is None:
            return False
        return any(c.restart_required for c in self.changes)

    @property
    def moved(self) -> bool:
        """Its config or secrets file moves: apply writes payload and secrets to the new path."""
        return any(c.moves for c in self.access)

    @property
    def rollout(self) -> bool:
        """Whether applying the head touches this agent's box."""
        return (
            self.status in ROLLOUT_STATUSES
            or self.format_only
            or self.moved
            or (self.secrets is not None and self.secrets.changed)
        )

    @property
    def changed(self) -> bool:
        """Anything to show: a rollout, an access or a settings change."""
        return self.rollout or bool(self.access) or bool(self.settings)


class AlertChange(_Frozen):
    """One alert rule that differs (alerts/*.yaml compiled; docs/alerts.md)."""

    name: str
    kind: Literal[ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.CHANGED]
    file: str | None = Field(default=None, description="The alerts file (head's, else base's).")
    old_expr: str | None = Field(default=None, description="The compiled PromQL now.")
    new_expr: str | None = Field(default=None, description="The compiled PromQL wanted.")
    fields: tuple[str, ...] = Field(
        default=(), description="What else changes: for, severity, route, summary, runbook..."
    )


class SecretValueCheck(enum.StrEnum):
    """What a pull-request diff could tell of an encrypted secret file that changed."""

    CHANGED = "changed"  # both sides decrypted here: the value differs
    SAME = "same"  # both sides decrypted here: re-encrypted, the same value
    NOT_CHECKED = "not checked"  # no identity here, or a side would not decrypt (`note`)


class SecretFileChange(_Frozen):
    """One `secrets/NAME.age` that differs between the revisions (pull-request mode).

    Its value never shows: only whether it changed, when this machine can decrypt both
    sides, and how many agents' payloads refer to the secret (apply writes a changed value
    to each of their secrets files: a rollout)."""

    name: str = Field(description="The secret's name, as `{secret: NAME}` refers to it.")
    path: str = Field(description="The file in the repo, e.g. secrets/NAME.age.")
    kind: Literal[ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.CHANGED]
    value: SecretValueCheck
    agents: int = Field(description="Agents whose payload refers to the secret at the head.")
    note: str | None = Field(
        default=None, description="Why the value was not checked (never a value)."
    )

    @property
    def rollout(self) -> bool:
        """Whether merging can change what the agents' secrets files hold."""
        return self.value is not SecretValueCheck.SAME and self.agents > 0


class FleetDiff(_Frozen):
    """The whole diff: every agent that differs (sorted by name), plus fleet-wide changes."""

    mode: Literal["pr", "live"]
    fleet_id: str
    base: str = Field(description="What the diff starts from: a revision, or 'live'.")
    head: str = Field(description="What the diff goes to: a revision or the work tree.")
    approvers: tuple[str, ...] = Field(
        default=(),
        description="fleet.review.cost_impacting_approvers, as `rules_from` sets them.",
    )
    access_approvers: tuple[str, ...] = Field(
        default=(), description="fleet.review.access_approvers, as `rules_from` sets them."
    )
    rules_from: str = Field(
        default="head",
        description="The side whose review rules judge the diff: the base revision in "
        "pull-request mode (a change cannot weaken the check it is judged by), the repo in "
        "live mode.",
    )
    agents: tuple[AgentDiff, ...] = Field(default=(), description="Agents that differ, by name.")
    unchanged: int = Field(default=0, description="How many agents do not differ at all.")
    fleet_settings: tuple[FieldChange, ...] = Field(
        default=(), description="fleet.yaml changes (policy, gates, ...)."
    )
    fleet_access: tuple[FieldChange, ...] = Field(
        default=(),
        description="[access] fleet-wide: fleet.yaml connection, secrets, state_dir, state, "
        "metrics source, review rules; and the payload schema's x-cost-impacting markers.",
    )
    cost: CostTotal | None = Field(
        default=None, description="The whole diff's cost estimate, when any agent has a figure."
    )

    alerts: tuple[AlertChange, ...] = Field(
        default=(),
        description="Alert rules added, removed or changed (pull-request mode; live mode when "
        "the loaded rules are known), by name.",
    )

    secret_files: tuple[SecretFileChange, ...] = Field(
        default=(),
        description="Encrypted secret files (secrets/NAME.age) added, removed or rewritten "
        "(pull-request mode), by name; values never shown.",
    )

    @property
    def has_changes(self) -> bool:
        """Whether anything differs (what `--exit-code` reports as 2); a secret file
        re-encrypted with the same value changes nothing on the fleet."""
        return (
            bool(self.fleet_settings)
            or bool(self.fleet_access)
            or bool(self.alerts)
            or any(f.value is not SecretValueCheck.SAME for f in self.secret_files)
            or any(a.changed for a in self.agents)
        )

    @property
    def problems(self) -> tuple[AgentDiff, ...]:
        return tuple(a for a in self.agents if a.status in PROBLEM_STATUSES)
