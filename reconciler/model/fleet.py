"""fleet.yaml: fleet-wide settings (connection defaults, rollout policy, gates, metrics, review)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, field_validator

from reconciler.model.base import Closed

FleetId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Percent = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?%$")]
# Wave entries are checked one by one in config/validate.py (rules wave.*), so that a
# "25" (a string) or 0 gets a precise message rather than a union-type error.
WaveEntry = Annotated[int, Field(strict=True)] | str
DEFAULT_WAVES: tuple[int | str, ...] = (1, 5, "25%", "100%")
PERCENT_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)%$")
# Cloud instance metadata services: never a probe target (they hand out credentials).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    }
)
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def probe_host_forbidden(host: str) -> str | None:
    """Why `host` may never be probed (link-local, a cloud metadata service), or None."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    try:
        addr = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if any(addr in net for net in LINK_LOCAL) or str(addr) in METADATA_HOSTS:
        return f"{host} is a link-local or cloud metadata address"
    return None


PROBE_HOSTS_SETTING: Final = "connection.allowed_probe_hosts"


def _host_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def probe_host_refusal(host: str, own_host: str | None, allowed: Collection[str]) -> str | None:
    """Why a health or metrics URL naming `host` may not be probed for a box at `own_host`
    (None: it may). The one rule: validate checks it on the repo, the HTTP edge at run time.

    Link-local and metadata hosts never; else the box's own host, or one fleet.yaml
    `connection.allowed_probe_hosts` lists. `own_host` None: the caller knows no box.
    """
    why = probe_host_forbidden(host)
    if why is not None:
        return f"{why}; never probed, whatever {PROBE_HOSTS_SETTING} says"
    if own_host is None:
        return None
    name = _host_name(host)
    if name == _host_name(own_host) or name in {_host_name(a) for a in allowed}:
        return None
    return (
        f"{host} is not the box's host ({own_host}); a health or metrics URL on "
        f"another host needs it listed in fleet.yaml {PROBE_HOSTS_SETTING}"
    )


class Connection(Closed):
    """SSH defaults for every box; any agent layer may override user, port, key, known_hosts."""

    user: str = "agent"
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    key: str | None = Field(default=None, description="Private key file (relative: to the repo).")
    known_hosts: str | None = Field(
        default=None, description="known_hosts file; host keys are never trusted on first use."
    )
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    command_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    concurrency: Annotated[int, Field(ge=1)] = 256
    connect_retries: Annotated[int, Field(ge=0)] = 2
    allowed_paths: list[str] = Field(
        default_factory=list,
        description="Directories on the boxes that agents' config_path and secrets path must "
        "lie under (absolute, normalised). No default: a fleet declares them.",
    )
    allowed_probe_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts a health_url or metrics_url may name besides the box's own host "
        "(e.g. a sidecar exporter). Link-local and cloud metadata addresses are never allowed.",
    )

    @field_validator("allowed_probe_hosts")
    @classmethod
    def _no_metadata_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            why = probe_host_forbidden(host)
            if why is not None:
                raise ValueError(f"{why}; it can never be allowed as a probe host")
        return hosts


class Rollout(Closed):
    """How a change moves through the fleet."""

    waves: list[WaveEntry] = Field(
        default_factory=lambda: list(DEFAULT_WAVES),
        description="Counts, then cumulative percentages, of the changing agents.",
    )
    soak_s: Annotated[float, Field(ge=0)] = Field(
        default=600, description="Seconds to watch each wave before its gates decide."
    )
    failure_budget: Annotated[int, Field(ge=0, strict=True)] | Percent = Field(
        default=0, description="Boxes (or % of the changing agents) that may fail before rollback."
    )
    history_keep: Annotated[int, Field(ge=1, le=100)] = 5
    verify_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    lease_ttl_s: Annotated[float, Field(gt=0)] = 900.0
    on_resume: Literal["settle", "finish", "rollback"] = Field(
        default="settle",
        description="A rollout cut short without a verdict (crash, signal): settle rolls back "
        "the cut-short wave and keeps the passed ones; finish keeps every box on the target; "
        "rollback restores every box. A failed gate or watchdog always rolls back.",
    )
    parallel: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=128, description="Boxes written at once within a wave."
    )
    stall_window_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="An agent alive with a queue and no task processed for this long is "
        "stalled; the watchdog watches each wave at least this long, even with soak 0.",
    )
    max_heartbeat_age_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="A heartbeat older than this fails the watchdog."
    )


MetricName = Literal[
    "error_rate",
    "auth_error_rate",
    "latency_p95",
    "cost_per_task",
    "tokens_per_task",
    "output_tokens_per_task",
    "custom",
]


class Gate(Closed):
    """A check of a wave's agents against a baseline and absolute limits."""

    name: Annotated[str, StringConstraints(min_length=1)]
    metric: MetricName
    query: str | None = Field(default=None, description="PromQL template for metric: custom.")
    max_ratio: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Fail when canary is significantly worse than baseline x ratio."
    )
    max: float | None = Field(default=None, description="Absolute upper limit.")
    min_samples: Annotated[int, Field(ge=1)] = Field(
        default=100, description="Tasks the canary (and the baseline) need before a decision."
    )
    window_s: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Seconds of data judged; default: the wave's soak."
    )
    baseline: Literal["auto", "peers", "before"] = Field(
        default="auto",
        description="peers: unchanged agents (same shard and tier, else same tier); before: the "
        "same agents before the change; auto: peers, else before.",
    )
    confidence: Annotated[float, Field(ge=0.5, lt=1)] = Field(
        default=0.95, description="One-sided confidence that the harm is real before failing."
    )


class Metrics(Closed):
    """Where gate metrics come from, and how long a gate may wait for them."""

    source: Literal["scrape", "prometheus"] = "scrape"
    prometheus_url: str | None = Field(
        default=None, description="Base URL of the Prometheus HTTP API (source: prometheus)."
    )
    scrape_interval_s: Annotated[float, Field(gt=0)] = 15.0
    agent_label: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] = Field(
        default="agent", description="The series label that names the agent."
    )
    queries: dict[str, str] = Field(
        default_factory=dict,
        description="PromQL templates replacing the built-in ones, by name ({selector}, {window}).",
    )
    retries: Annotated[int, Field(ge=0, le=20)] = Field(
        default=3, description="Times a failed measurement is retried before the gate fails."
    )
    retry_delay_s: Annotated[float, Field(ge=0)] = 2.0
    inconclusive_wait_s: Annotated[float, Field(ge=0)] = Field(
        default=600, description="How long a wave waits for enough data; then its gates fail."
    )
    stale_after_s: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Samples older than this never count; default 3 x interval."
    )


class Review(Closed):
    """Rules for pull-request review of the fleet diff; a pull request is judged by its base's."""

    cost_impacting_approvers: list[str] = Field(
        default_factory=list, description="Who must approve cost-impacting changes."
    )
    access_approvers: list[str] = Field(
        default_factory=list,
        description="Who must approve [access] changes: where and how reconciler connects or "
        "what it runs (host, port, user, key, known_hosts, config_path, secrets_path, "
        "commands, secrets, state_dir) and these review rules themselves.",
    )


class AgeIdentity(Closed):
    """Where the age identity that decrypts the repo's secrets/NAME.age files comes from."""

    identity_file: str | None = Field(
        default=None,
        description="File holding the age identity (AGE-SECRET-KEY-1...; relative: to the "
        "repo, `~` expands). Keep it outside the repo, mode 0600.",
    )
    identity_env: str = Field(
        default="RECONCILER_AGE_IDENTITY",
        description="Env var holding the age identity text; used before identity_file.",
    )


class Secrets(Closed):
    """Where secret values come from at apply time (never the repo's plaintext).

    Lookup order for a value of NAME: the env var RECONCILER_SECRET_<NAME>, then the file
    `files` names for it, then the repo's age-encrypted secrets/NAME.age.
    """

    fleet_key_env: str = Field(
        default="RECONCILER_FLEET_KEY", description="Env var holding the fingerprint HMAC key."
    )
    fleet_key_file: str | None = Field(
        default=None,
        description="File holding the fingerprint key; default: fleet.key beside the age "
        "identity_file, when there is one.",
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="Secret name -> file holding its value."
    )
    age: AgeIdentity = AgeIdentity()


# -- cost: the price table (fleet.yaml `prices`) and the usage file (usage.yaml) -------------
# Kept in one block: docs/cost.md. Prices are US dollars per million tokens.

NonNegative = Annotated[float, Field(ge=0)]
ModelName = Annotated[str, StringConstraints(min_length=1)]
TierName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]


class ModelPrice(Closed):
    """One model's list price: US dollars per million input and output tokens."""

    usd_per_mtok_in: NonNegative = Field(description="USD per million input tokens.")
    usd_per_mtok_out: NonNegative = Field(description="USD per million output tokens.")


class Prices(Closed):
    """fleet.yaml `prices`: what each model costs, for the diff's cost estimates."""

    dated: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = (
        Field(default=None, description="When these prices were copied from the vendor (Y-M-D).")
    )
    example: bool = Field(
        default=False,
        description="Example prices (not your contract's): estimates say 'example prices'.",
    )
    models: dict[ModelName, ModelPrice] = Field(
        default_factory=dict, description="Model name (the payload's `model`) -> its price."
    )


class TierUsage(Closed):
    """One tier's traffic per agent, for pull-request estimates without Prometheus."""

    tasks_per_day: NonNegative = Field(description="Tasks per day, per agent of the tier.")
    input_tokens_per_task: NonNegative = Field(description="Mean input tokens per task.")
    output_tokens_per_task: NonNegative = Field(description="Mean output tokens per task.")


class UsageFile(Closed):
    """usage.yaml (Infracost-style): expected traffic per tier, when no Prometheus is named."""

    window: str | None = Field(
        default=None,
        description="Where the figures come from and over what window (e.g. '30-day mean, "
        "2026-11'); shown beside every estimate made from them.",
    )
    tiers: dict[TierName, TierUsage] = Field(default_factory=dict)


class SecretDecl(Closed):
    """One declared secret name; values never live in the repo."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    description: str | None = None
    direction: Literal["outbound", "inbound"] = Field(
        default="outbound",
        description="outbound: a credential the agent sends (an API key); during a rotation it "
        "uses `next` as soon as it is staged. inbound: a token the agent checks; it accepts "
        "`current` and `next` while both are present.",
    )


class SecretsIndex(Closed):
    """secrets/index.yaml."""

    secrets: list[SecretDecl] = Field(default_factory=list)


Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+[smhdw]$")]
AlertName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
RouteName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

# The alert metric catalogue (docs/alerts.md): base metrics of the box contract and the
# derived ones. reconciler/alerts/catalogue.py holds each one's PromQL; a test keeps both equal.
ALERT_METRICS: Final[tuple[str, ...]] = (
    "throughput",
    "arrivals_per_minute",
    "error_rate",
    "latency_p95",
    "tokens_per_minute",
    "cost_per_task",
    "cost_per_task_p95",
    "output_tokens_per_task",
    "memory_use_ratio",
    "heartbeat_age_seconds",
    "queue_depth",
    "memory_bytes",
)
AlertLevel = Literal["agent", "tier", "shard", "fleet"]


class SecretRef(Closed):
    """`{secret: NAME}`: a value resolved from the secret store only when shipping."""

    secret: SecretName


class WebhookReceiver(Closed):
    url: SecretRef = Field(description="The webhook URL, as a secret reference.")


class SlackReceiver(Closed):
    url: SecretRef = Field(description="The Slack incoming-webhook URL, as a secret reference.")
    channel: str | None = None


class AlertRoute(Closed):
    """A named destination for alerts: exactly one of webhook or slack."""

    name: RouteName
    webhook: WebhookReceiver | None = None
    slack: SlackReceiver | None = None
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "tier"], description="Alertmanager group_by."
    )
    repeat_interval: Duration = "4h"


class Alerting(Closed):
    """How alerts/*.yaml compile: evaluation, the derived metrics' window, and the routes."""

    evaluation_interval: Duration = "1m"
    rate_window: Duration = Field(
        default="5m", description="The window of the derived metrics' rates (recording rules)."
    )
    routes: list[AlertRoute] = Field(default_factory=list)
    default_route: RouteName | None = Field(
        default=None, description="Route of alerts that name none; default: the first route."
    )


class AlertSelector(Closed):
    """Which series an alert watches; each part must name at least one agent."""

    tier: str | None = None
    shard: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class RollingWindow(Closed):
    """Compare with the same metric's average over a rolling window (e.g. 7d)."""

    average_over: Duration


class AlertRule(Closed):
    """One alert rule: a catalogue metric and a condition, or raw PromQL (`promql:`)."""

    name: AlertName
    metric: str | None = Field(default=None, description="A metric of the catalogue.")
    promql: str | None = Field(
        default=None, description="Raw PromQL escape hatch instead of metric and condition."
    )
    above: float | None = None
    below: float | None = None
    relative_to: Literal["tier"] | RollingWindow | None = Field(
        default=None,
        description="Absent: above/below is a value. `tier`: a ratio to the same metric over "
        "the agent's tier. {average_over: 7d}: a ratio to its rolling-window average.",
    )
    by: AlertLevel = Field(
        default="agent", description="The level the metric is judged at (aggregated by)."
    )
    for_: Duration = Field(default="5m", alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    selector: AlertSelector = AlertSelector()
    route: RouteName | None = None
    summary: str | None = None
    runbook: str | None = None


class AlertsFile(Closed):
    """alerts/*.yaml."""

    rules: list[AlertRule] = Field(default_factory=list)


class PrometheusBox(Closed):
    """The Prometheus box the compiled alert rules are shipped to (alerts: `reconcile apply`).

    Reached like an agent's box (SSH with the fleet's connection defaults, host key
    checked, a lease, a stamp, a history), but it holds a rules directory instead of a
    config file. Prometheus must read `<rules_dir>/*.rules.yml` (rule_files). Its reload
    is `POST <url>/-/reload` (needs --web.enable-lifecycle) unless `reload_command` is set.
    """

    host: str = Field(description="SSH host name or address of the Prometheus box.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="SSH port; default: connection.port."
    )
    user: str | None = Field(default=None, description="SSH user; default: connection.user.")
    key: str | None = Field(default=None, description="Private key; default: connection.key.")
    known_hosts: str | None = Field(
        default=None, description="known_hosts file; default: connection.known_hosts."
    )
    rules_dir: str = Field(
        description="Absolute directory Prometheus reads rule files from; under "
        "connection.allowed_paths. Only this fleet's files in it are ever written or removed."
    )
    url: str = Field(description="Base URL of its HTTP API: /api/v1/rules verifies what it loaded.")
    reload_command: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None,
        description="argv run on the box to reload Prometheus; default: POST <url>/-/reload.",
    )
    check_command: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None,
        description="argv run on the box before the reload with the new rule files' paths "
        "appended, e.g. [promtool, check, rules]: a refusal then names the rule and the "
        "error (a refused reload only says that the configuration failed).",
    )
    verify_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="How long the reloaded rules may take to show in /api/v1/rules."
    )


TierClass = Literal["latency-sensitive", "batch"]
DEFAULT_UTILISATION: Final[dict[TierClass, float]] = {"latency-sensitive": 0.65, "batch": 0.85}


class Capacity(Closed):
    """How `reconcile capacity` sizes each tier: N = ceil(λ·s / (c·U))."""

    tiers: dict[str, TierClass] = Field(
        default_factory=dict,
        description="Tier name -> its class; a tier not listed is latency-sensitive.",
    )
    target_utilisation: dict[TierClass, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: dict(DEFAULT_UTILISATION),
        description="U per tier class (default: latency-sensitive 0.65, batch 0.85).",
    )
    headroom: Annotated[float, Field(ge=0, le=10)] = Field(
        default=0.3, description="Extra load the headroom figure is sized for (0.3: 30%)."
    )
    heavy_tail_ratio: Annotated[float, Field(gt=1)] = Field(
        default=2.0,
        description="When p95 service time > this x the mean, the tail is heavy: N uses p95.",
    )


class AlertmanagerBox(Closed):
    """The Alertmanager box the compiled alertmanager.yml is shipped to (`reconcile apply`).

    Reached like the Prometheus box (SSH with the fleet's connection defaults, host key
    checked, a lease, a stamp, a history). The file is written 0600 with the routes' secret
    URLs resolved, then `POST <url>/-/reload`; `GET <url>/api/v2/status` verifies it loaded.
    """

    host: str = Field(description="SSH host name or address of the Alertmanager box.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="SSH port; default: connection.port."
    )
    user: str | None = Field(default=None, description="SSH user; default: connection.user.")
    key: str | None = Field(default=None, description="Private key; default: connection.key.")
    known_hosts: str | None = Field(
        default=None, description="known_hosts file; default: connection.known_hosts."
    )
    config_path: str = Field(
        description="Absolute path of the alertmanager.yml Alertmanager reads (--config.file);"
        " under connection.allowed_paths."
    )
    url: str = Field(description="Base URL of its HTTP API: /-/reload and /api/v2/status.")
    verify_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="How long the reloaded file may take to show in /api/v2/status."
    )


class FleetFile(Closed):
    """The whole of fleet.yaml."""

    fleet_id: FleetId
    description: str | None = None
    connection: Connection = Connection()
    rollout: Rollout = Rollout()
    gates: list[Gate] = Field(default_factory=list)
    metrics: Metrics = Metrics()
    review: Review = Review()
    secrets: Secrets = Secrets()
    alerting: Alerting = Alerting()
    prometheus: PrometheusBox | None = Field(
        default=None, description="Where `reconcile apply` ships the compiled alert rules."
    )
    capacity: Capacity = Capacity()
    alertmanager: AlertmanagerBox | None = Field(
        default=None, description="Where `reconcile apply` ships the compiled alertmanager.yml."
    )
    state_dir: str | None = Field(
        default=None, description="Journal and lock directory; default ~/.local/state/reconciler."
    )
    prices: Prices | None = Field(
        default=None, description="Price per model for cost estimates (docs/cost.md)."
    )
    state: str | None = Field(
        default=None,
        description=(
            "The shared state backend for a team: postgresql://USER@HOST:PORT/DATABASE, without"
            " a password (PGPASSWORD, RECONCILER_STATE_PASSWORD or a passfile give it);"
            " overrides state_dir; --state overrides it. Default: the SQLite state directory."
        ),
    )
