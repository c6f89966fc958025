"""The plan's shapes: what goes in (one `Change` per changing agent) and what comes out (`Plan`).

A plan is a value: the same changes, revision and policy always give the same
plan, and a plan round-trips through JSON (`apply --plan FILE`) unchanged.
Nothing here holds health or time: the plan id covers only what a box *is*
(its stamp and its file), so a saved plan goes stale only when a box moved.
"""

from __future__ import annotations

import enum
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reconciler.model.box import Sha256

PLAN_VERSION = 1
AgentName = Annotated[str, StringConstraints(min_length=1)]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Activation(enum.StrEnum):
    """How a box takes up its new file: a reload, or a restart for x-restart-required fields."""

    RELOAD = "reload"
    RESTART = "restart"


def restore_activations(how: Activation, *, can_restart: bool) -> tuple[Activation, ...]:
    """What a restore tries, in order: the planned activation, then a restart when the
    agent refuses a reload (a crashed agent cannot reload) and a restart command exists."""
    if how is Activation.RELOAD and can_restart:
        return (Activation.RELOAD, Activation.RESTART)
    return (how,)


class Delivery(enum.StrEnum):
    """Where the new file comes from: written over SFTP, or restored from the box's history."""

    WRITE = "write"
    RESTORE = "restore"


class PathChange(_Value):
    """One changed field of an agent's payload, with the flags its schema gives it."""

    path: tuple[str, ...]
    restart_required: bool = False
    cost_impacting: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


class Change(_Value):
    """One agent whose box must change: the plan's input, as read from the repo and the box."""

    agent: AgentName
    tier: AgentName
    shard: AgentName
    paths: tuple[PathChange, ...] = ()
    desired_sha: Sha256 = Field(description="sha256 of the bytes the repo renders for it")
    live_sha: Sha256 | None = Field(description="sha256 of the file on the box; None: no file")
    stamp_sha: Sha256 | None = Field(description="the stamp's config_sha256; None: unmanaged")
    stamp_revision: str | None = Field(description="the stamp's revision; None: unmanaged")
    history_shas: tuple[Sha256, ...] = Field(
        default=(), description="shas the box keeps in its history directory"
    )
    secrets: bool = Field(
        default=False, description="the box's secrets file differs from the one the repo wants"
    )
    moved_from: str | None = Field(
        default=None,
        description="the config path the agent had before: its file moves to config_path",
    )
    config_path: str | None = Field(
        default=None, description="the config path the payload is written to (set with a move)"
    )


class BoxStep(_Value):
    """What the rollout does to one box, and what the box was when the plan was made."""

    agent: AgentName
    tier: AgentName
    shard: AgentName
    delivery: Delivery
    activation: Activation
    target_sha: Sha256
    pre_sha: Sha256 | None = Field(description="the file's sha before the change (rollback)")
    stamp_sha: Sha256 | None
    stamp_revision: str | None
    history_shas: tuple[Sha256, ...] = ()
    paths: tuple[PathChange, ...] = ()
    secrets: bool = False  # the secrets file changes (alone, or with the config)
    moved_from: str | None = None  # the config path before a move ([access] in the diff)
    config_path: str | None = None  # the config path after a move

    @property
    def moved(self) -> bool:
        """The agent's config file moves: the payload and secrets are written to the new path."""
        return self.moved_from is not None and self.moved_from != self.config_path

    @property
    def move_text(self) -> str:
        """'config path /a → /b' for a moved box, else ''."""
        return f"config path {self.moved_from} → {self.config_path}" if self.moved else ""

    @property
    def adopt(self) -> bool:
        """The box has no stamp: this rollout adopts it."""
        return self.stamp_sha is None

    @property
    def drifted(self) -> bool:
        """The file on the box is not what its stamp says was written (a hand edit)."""
        return self.stamp_sha is not None and self.pre_sha != self.stamp_sha

    @property
    def cost_impacting(self) -> bool:
        return any(p.cost_impacting for p in self.paths)

    @property
    def label(self) -> str:
        """`write+reload`, `restore+restart`, ...: the action in a few characters."""
        return f"{self.delivery}+{self.activation}"

    def as_change(self) -> Change:
        """The planning input this step was made from."""
        return Change(
            agent=self.agent,
            tier=self.tier,
            shard=self.shard,
            paths=self.paths,
            desired_sha=self.target_sha,
            live_sha=self.pre_sha,
            stamp_sha=self.stamp_sha,
            stamp_revision=self.stamp_revision,
            history_shas=self.history_shas,
            secrets=self.secrets,
            moved_from=self.moved_from,
            config_path=self.config_path,
        )


class Wave(_Value):
    """One wave: its agents in rollout order, how long it soaks, which gates judge it."""

    index: Annotated[int, Field(ge=0)]
    agents: tuple[AgentName, ...]
    soak_s: Annotated[float, Field(ge=0)]
    gates: tuple[str, ...] = ()


class Policy(_Value):
    """The rollout policy the plan was made with, as written in fleet.yaml."""

    waves: tuple[int | str, ...]
    soak_s: Annotated[float, Field(ge=0)]
    failure_budget: int | str


class RulesStep(_Value):
    """The last step of a rollout: the compiled alert rules shipped to the Prometheus box.

    It runs after the last agent wave passed (or alone, for an alert-only change); a
    refusal by Prometheus restores the rules it had and undoes no agent wave.
    """

    box: str = Field(description="the Prometheus box, as user@host:port:rules_dir")
    target_sha: Sha256 = Field(description="sha256 of the rules manifest to ship")
    pre_sha: Sha256 | None = Field(description="sha256 of the manifest on the box; None: none")
    files: tuple[str, ...] = Field(description="the rule files shipped, by name")
    removed: tuple[str, ...] = Field(default=(), description="our rule files no longer wanted")
    groups: tuple[str, ...] = Field(description="the rule groups Prometheus must load")


class Plan(_Value):
    """The exact plan of a rollout: waves, each box's action, the budget; JSON round-trips."""

    plan_version: int = PLAN_VERSION
    plan_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    fleet_id: str
    target_revision: str
    policy: Policy
    waves: tuple[Wave, ...]
    boxes: tuple[BoxStep, ...] = Field(description="every changing box, in rollout order")
    failure_budget: Annotated[int, Field(ge=0)] = Field(description="boxes that may fail")
    orphans: tuple[str, ...] = Field(
        default=(), description="boxes stamped by this fleet with no agent in the repo: left alone"
    )
    rules: RulesStep | None = Field(
        default=None, description="the alert rules shipped after the last wave; None: unchanged"
    )

    @cached_property
    def _by_agent(self) -> dict[str, BoxStep]:
        return {b.agent: b for b in self.boxes}

    def box(self, agent: str) -> BoxStep:
        """The step of one agent; KeyError when the plan does not change it."""
        return self._by_agent[agent]

    @property
    def agents(self) -> tuple[str, ...]:
        """Every changing agent, in rollout order."""
        return tuple(b.agent for b in self.boxes)

    @property
    def empty(self) -> bool:
        return not self.boxes

    def to_json(self) -> str:
        """The plan file's text (`apply --plan FILE` reads it back with `load_plan`)."""
        return self.model_dump_json(indent=2) + "\n"
