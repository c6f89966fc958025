"""The simulated AI agent inside a demo box: reloads its config, works, gets sick.

Work is tick-based and cheap: each tick adds Poisson(rate * dt) tasks to the
queue and processes them in aggregate, drawing errors, latency and tokens from
the `Behaviour` of the config loaded at the last successful reload. A restart
starts a fresh process: its Prometheus counters start again from zero, as a
real agent's do. Time comes from a monotonic clock handed in.

Secrets follow the box contract's directions: the API key is outbound, sent as
the secret's `next` once a rotation staged one (`Slot.in_use("outbound")`), and
every task fails with reason "auth" while the demo provider does not accept it
(checked per tick, so a revocation bites without a reload); a `caller_token:
{secret: NAME}` in the config is inbound: callers may present `current` or
`next` (`Slot.accepted()`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reconciler.demo.faults import FaultKind, Faults
from reconciler.demo.provider import Provider
from reconciler.demo.workload import (
    ERROR_REASONS,
    REASON_AUTH,
    Behaviour,
    ConfigRejected,
    behaviour,
)
from reconciler.model.box import (
    COST_BUCKETS,
    LABEL_ERROR_REASON,
    LATENCY_BUCKETS,
    METRIC_ARRIVALS,
    METRIC_COST,
    METRIC_HEARTBEAT,
    METRIC_LATENCY,
    METRIC_MEMORY,
    METRIC_MEMORY_LIMIT,
    METRIC_QUEUE,
    METRIC_TASK_COST,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
    BoxPaths,
    Health,
    parse_stamp,
)
from reconciler.secrets.secretsfile import SecretsFileError, Slot, parse_secrets_file

AGENT_VERSION: Final = "demo-agent/1.0.0"
MAX_BACKLOG: Final = 100_000
DEMO_MEMORY_LIMIT: Final = 1 << 30  # every demo agent's memory limit (memory_limit_bytes)
_yaml = YAML(typ="safe")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command run on the box returned."""

    code: int
    stdout: str = ""
    stderr: str = ""


class AgentMetrics:
    """One agent process's Prometheus metrics, in a registry of its own."""

    def __init__(self, agent: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r, lbl = self.registry, ["agent"]

        def counter(name: str, doc: str) -> Any:
            return Counter(name.removesuffix("_total"), doc, lbl, registry=r).labels(agent)

        self.tasks = counter(METRIC_TASKS, "Tasks processed.")
        errors = Counter(
            METRIC_TASK_ERRORS.removesuffix("_total"),
            "Tasks that failed, by reason (auth: the credential was refused).",
            ["agent", LABEL_ERROR_REASON],
            registry=r,
        )
        self.errors = {why: errors.labels(agent, why) for why in ERROR_REASONS}  # all from 0
        self.tokens_in = counter(METRIC_TOKENS_IN, "Model input tokens.")
        self.tokens_out = counter(METRIC_TOKENS_OUT, "Model output tokens.")
        self.cost = counter(METRIC_COST, "Model cost in US dollars.")
        self.latency = Histogram(
            METRIC_LATENCY, "Task latency.", lbl, registry=r, buckets=LATENCY_BUCKETS
        ).labels(agent)
        self.memory = Gauge(METRIC_MEMORY, "Resident memory.", lbl, registry=r).labels(agent)
        self.memory_limit = Gauge(
            METRIC_MEMORY_LIMIT, "The agent's memory limit.", lbl, registry=r
        ).labels(agent)
        self.memory_limit.set(DEMO_MEMORY_LIMIT)
        self.queue = Gauge(METRIC_QUEUE, "Tasks waiting.", lbl, registry=r).labels(agent)
        self.heartbeat = Gauge(
            METRIC_HEARTBEAT, "Unix time of the last heartbeat.", lbl, registry=r
        ).labels(agent)
        self.task_cost = Histogram(
            METRIC_TASK_COST, "Model cost of each task.", lbl, registry=r, buckets=COST_BUCKETS
        ).labels(agent)
        self.arrivals = counter(METRIC_ARRIVALS, "Tasks that arrived.")

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def local_path(root: Path, box_path: PurePosixPath | str) -> Path:
    """The file under a box's root directory that an absolute box path names."""
    return root / PurePosixPath(box_path).relative_to("/")


class SimAgent:
    """A simulated agent: its config, its process state, its work and its metrics."""

    def __init__(
        self,
        name: str,
        root: Path,
        paths: BoxPaths,
        faults: Faults,
        *,
        provider: Provider,
        count_auth: Callable[[int], None] | None = None,
        rate: float = 2.0,
        base_error_rate: float = 0.01,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name, self.root, self.paths, self.faults = name, root, paths, faults
        self.wall = wall  # Unix time, for the heartbeat_timestamp_seconds gauge
        self.provider, self.count_auth = provider, count_auth
        self.slots: dict[str, Slot] = {}  # the secrets file loaded at the last (re)load
        self.rate, self.base_error_rate, self.clock = rate, base_error_rate, clock
        self.rng = random.Random(f"{seed}:{name}")  # noqa: S311 (a simulation, seedable)
        now = clock()
        self.crashed: str | None = "not started"  # why the agent is down; None when running
        self.started_at = now
        self.last_heartbeat = now
        self.last_tick = now
        self.reloaded_at: float | None = None
        self.loaded_sha: str | None = None
        self.loaded_config: dict[str, Any] | None = None
        self.behaviour: Behaviour | None = None
        self.backlog = 0
        self.tasks_processed = 0
        self.metrics = AgentMetrics(name)
        self._stamp_cache: tuple[tuple[int, int], str, str] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def _read(self) -> tuple[str, dict[str, Any], Behaviour, dict[str, Slot]]:
        """Read and check config and secrets; ConfigRejected when the agent can't run them."""
        try:
            data = local_path(self.root, self.paths.config).read_bytes()
        except OSError as exc:
            raise ConfigRejected(f"cannot read {self.paths.config}: {exc.strerror}") from None
        try:
            config = _yaml.load(data)
        except YAMLError as exc:
            raise ConfigRejected(f"{self.paths.config} is not valid YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ConfigRejected(f"{self.paths.config} does not hold a map")
        slots = self._slots()
        sent = {name: slot.in_use("outbound") for name, slot in slots.items()}
        how = behaviour(config, sent, base_error_rate=self.base_error_rate)
        return hashlib.sha256(data).hexdigest(), config, how, slots

    def _slots(self) -> dict[str, Slot]:
        """The secrets file's slots (none when it is missing or unreadable)."""
        try:
            return parse_secrets_file(local_path(self.root, self.paths.secrets).read_bytes())
        except (OSError, SecretsFileError):
            return {}

    def _load(
        self, sha: str, config: dict[str, Any], how: Behaviour, slots: dict[str, Slot]
    ) -> None:
        self.loaded_sha, self.loaded_config, self.behaviour = sha, config, how
        self.slots = slots
        self.reloaded_at = self.clock()
        self.metrics.memory.set(how.memory_bytes)

    def crash(self, reason: str) -> None:
        self.crashed = reason

    def start(self) -> CommandResult:
        """Start a fresh agent process (boot or restart): new metrics, config read anew."""
        try:
            sha, config, how, slots = self._read()
        except ConfigRejected as exc:
            self.crash(f"failed to start: {exc}")
            return CommandResult(1, stderr=f"agent failed to start: {exc}\n")
        now = self.clock()
        self.metrics = AgentMetrics(self.name)
        self.crashed = None
        self.started_at = self.last_heartbeat = self.last_tick = now
        self.metrics.heartbeat.set(self.wall())
        self.tasks_processed = 0
        self._load(sha, config, how, slots)
        self.metrics.queue.set(self.backlog)
        return CommandResult(0, stdout=f"agent restarted, config sha256 {sha[:12]}\n")

    def reload(self) -> CommandResult:
        """Re-read config and secrets in place; the loaded sha changes only on success."""
        if self.crashed is not None:
            return CommandResult(1, stderr=f"agent is not running ({self.crashed}); restart it\n")
        if self.faults.take(FaultKind.CRASH_ON_RELOAD):
            self.crash("crashed while reloading")
            return CommandResult(1, stderr="agent crashed while reloading its config\n")
        try:
            sha, config, how, slots = self._read()
        except ConfigRejected as exc:
            return CommandResult(1, stderr=f"reload failed, still running the old config: {exc}\n")
        self._load(sha, config, how, slots)
        return CommandResult(0, stdout=f"config reloaded, sha256 {sha[:12]}\n")

    # -- work ------------------------------------------------------------------------

    def tick(self, dt: float | None = None) -> None:
        """Advance the agent by `dt` seconds of work (default: the time since the last tick)."""
        now = self.clock()
        if dt is None:
            dt = max(0.0, now - self.last_tick)
        self.last_tick = now
        arrivals = _poisson(self.rng, self.rate * dt)
        self.backlog = min(MAX_BACKLOG, self.backlog + arrivals)
        self.metrics.arrivals.inc(arrivals)
        flap = self.faults.active.get(FaultKind.FLAP)
        if (
            self.crashed is None
            and flap is not None
            and self.reloaded_at is not None
            and now - self.reloaded_at >= flap
        ):
            self.crash(f"crashed {flap:g}s after reload")
        if self.crashed is not None or self.behaviour is None:
            return
        self.last_heartbeat = now
        self.metrics.heartbeat.set(self.wall())
        if not self.faults.has(FaultKind.STALL) and self.backlog:
            capacity = int(self.rate * dt * 3) + 1
            n = min(self.backlog, capacity)
            self.backlog -= n
            self._process(n, self.behaviour)
        self.metrics.queue.set(self.backlog)

    def auth_problem(self) -> str | None:
        """Why the provider refuses the agent's requests now (None: it does not)."""
        how = self.behaviour
        if how is None or how.api_key is None:
            return None  # no key at all: the behaviour's own error (reason "auth")
        return None if self.provider.accepts(how.api_key) else "API key rejected (401)"

    def accepts_caller(self, token: str) -> bool:
        """Inbound: a caller's token is good when it is the `current` or the staged `next`
        of the secret the config's `caller_token: {secret: NAME}` names."""
        ref = (self.loaded_config or {}).get("caller_token")
        name = ref.get("secret") if isinstance(ref, dict) else None
        slot = self.slots.get(name) if isinstance(name, str) else None
        return slot is not None and token in slot.accepted()

    def _process(self, n: int, how: Behaviour) -> None:
        """Process `n` tasks in aggregate and count them."""
        rng, m = self.rng, self.metrics
        p_err = min(1.0, how.error_rate + self.faults.value(FaultKind.ERROR_RATE))
        label = how.error_label
        if self.auth_problem() is not None:
            p_err, label = 1.0, REASON_AUTH
        added = self.faults.value(FaultKind.LATENCY)
        k_tokens = self.faults.value(FaultKind.TOKENS, 1.0)
        sigma = 0.3
        mu = math.log(how.latency_s) - sigma * sigma / 2
        errors = tokens_in = tokens_out = 0
        for _ in range(n):
            if rng.random() < p_err:
                errors += 1
                m.latency.observe(how.failed_latency_s + added)
                continue
            out = max(1.0, min(how.max_tokens, rng.gauss(how.tokens_out, how.tokens_out * 0.2)))
            t_out = round(out * k_tokens)
            t_in = round(max(1.0, rng.gauss(how.tokens_in, how.tokens_in * 0.1)))
            tokens_out += t_out
            tokens_in += t_in
            m.task_cost.observe(t_in * how.usd_per_token_in + t_out * how.usd_per_token_out)
            m.latency.observe(rng.lognormvariate(mu, sigma) + added)
        m.tasks.inc(n)
        if errors:
            m.errors[label].inc(errors)
            if label == REASON_AUTH and self.count_auth is not None:
                self.count_auth(errors)
        if tokens_in:
            m.tokens_in.inc(tokens_in)
            m.tokens_out.inc(tokens_out)
            m.cost.inc(tokens_in * how.usd_per_token_in + tokens_out * how.usd_per_token_out)
        self.tasks_processed += n

    # -- what the box reports --------------------------------------------------------

    def loaded_revision(self) -> str | None:
        """The stamp's revision, when the stamp describes the config the agent has loaded."""
        if self.loaded_sha is None:
            return None
        path = local_path(self.root, self.paths.stamp)
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
            if self._stamp_cache is None or self._stamp_cache[0] != key:
                stamp = parse_stamp(path.read_bytes())
                self._stamp_cache = (key, stamp.config_sha256, stamp.revision)
        except (OSError, ValueError):
            return None
        _, sha, revision = self._stamp_cache
        return revision if sha == self.loaded_sha else None

    def health(self) -> Health:
        now = self.clock()
        alive = self.crashed is None
        skew = self.faults.value(FaultKind.CLOCK_SKEW)
        return Health(
            alive=alive,
            heartbeat_age_s=round(max(0.0, now - self.last_heartbeat + skew), 3),
            loaded_revision=self.loaded_revision(),
            loaded_sha256=self.loaded_sha,
            agent_version=AGENT_VERSION,
            tasks_processed=self.tasks_processed,
            queue_depth=self.backlog,
            uptime_s=round(now - self.started_at, 3) if alive else 0.0,
        )

    def health_json(self) -> bytes:
        """The health answer's bytes; a down agent says why in an extra `reason` field."""
        doc = self.health().model_dump(mode="json")
        if self.crashed is not None:
            doc["reason"] = self.crashed
        return (json.dumps(doc) + "\n").encode()
