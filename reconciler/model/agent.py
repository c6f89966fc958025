"""reconciler's own fields of an agent: how to reach its box and what to run there.

These fields layer like the payload (fleet connection < base < tier < shard <
agent), but only `config` (the payload) is rendered to the box. Changing a
user or a health URL changes no box's config and rolls nothing out.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from reconciler.model.base import Closed
from reconciler.model.fleet import Gate

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Argv = Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1)]


class Commands(Closed):
    """The only commands reconciler ever runs on a box, as argv lists."""

    reload: Argv | None = Field(default=None, description="Re-read config and secrets in place.")
    restart: Argv | None = Field(
        default=None, description="Restart the agent; used for x-restart-required changes."
    )
    health: Argv | None = Field(
        default=None, description="Optional: prints the health JSON, instead of health_url."
    )


class AgentSettings(Closed):
    """Every layerable field; each layer (base, tier, shard defaults, agent) sets some."""

    host: str | None = Field(default=None, description="SSH host name or address of the box.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="SSH port."
    )
    user: str | None = Field(default=None, description="SSH user.")
    key: str | None = Field(
        default=None, description="Private key file (relative paths: to the repo root)."
    )
    known_hosts: str | None = Field(
        default=None, description="known_hosts file the host key is checked against."
    )
    config_path: str | None = Field(
        default=None, description="Absolute path of the config file the agent reads."
    )
    secrets_path: str | None = Field(
        default=None,
        description="Absolute path of the secrets file (mode 0600); default: beside config_path.",
    )
    health_url: str | None = Field(
        default=None, description="Health JSON endpoint; {host} is replaced by the host."
    )
    metrics_url: str | None = Field(
        default=None, description="Prometheus text endpoint; {host} is replaced by the host."
    )
    commands: Commands | None = None
    command_timeout_s: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Seconds a reload, restart or health command may take on this box; "
        "default: fleet.yaml connection.command_timeout_s.",
    )
    labels: dict[str, str] | None = Field(default=None, description="Free-form selector labels.")
    config: dict[str, Any] | None = Field(
        default=None,
        description="The payload: rendered to config_path, checked by the repo's schema.",
    )


class TierFile(AgentSettings):
    """agents/tier-NAME.yaml: defaults for every agent of the tier."""

    description: str | None = None
    gates: list[Gate] | None = Field(
        default=None, description="Gates replacing fleet.yaml's of the same name for this tier."
    )


class BaseFile(AgentSettings):
    """agents/_base.yaml: defaults for every agent."""

    description: str | None = None


class AgentEntry(AgentSettings):
    """One agent in a shard file: its identity, plus any overrides."""

    name: Name
    tier: Name


class ShardFile(Closed):
    """shards/NAME.yaml: a shard's overrides and its agents."""

    shard: Name | None = Field(default=None, description="Must equal the file name when given.")
    description: str | None = None
    defaults: AgentSettings | None = Field(
        default=None, description="Overrides for every agent of the shard."
    )
    agents: list[AgentEntry] = Field(default_factory=list)


class Agent(Closed):
    """An agent's effective settings after layering: what the tool needs to manage its box."""

    name: Name
    tier: Name
    shard: Name
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    user: str
    key: str | None = None
    known_hosts: str | None = None
    config_path: str
    secrets_path: str | None = None
    health_url: str | None = None
    metrics_url: str | None = None
    commands: Commands = Commands()
    command_timeout_s: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def target(self) -> tuple[str, int, str]:
        """(host, port, config_path): unique in the fleet."""
        return (self.host, self.port, self.config_path)

    def url(self, template: str | None) -> str | None:
        return None if template is None else template.replace("{host}", self.host)
