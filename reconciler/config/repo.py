"""A config repo, loaded: every file checked, every agent layered, every error collected.

`load_repo(files)` takes the repo's files as a path -> bytes map and returns a
`Repo`, or raises `ConfigErrors` holding every problem found (never only the
first). Steps: safe-load each YAML file; check each file's shape against its
model; fold fleet connection < base < tier < shard defaults < agent for every
agent (sharing the folded prefix of each tier and shard); check each effective
agent and its payload; then the rules across files (validate.py).
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from reconciler.config.errors import ConfigError, ConfigErrors, SourceSpan
from reconciler.config.layer import Layer, Provenance, fold
from reconciler.config.load import Doc, Loc, load_yaml
from reconciler.config.payload import PayloadSchema, load_payload_schema
from reconciler.config.shape import check_shape
from reconciler.model.agent import Agent, BaseFile, ShardFile, TierFile
from reconciler.model.fleet import AlertsFile, Connection, FleetFile, SecretsIndex

FLEET_FILE = "fleet.yaml"
BASE_FILE = "agents/_base.yaml"
PAYLOAD_SCHEMA_FILE = "schemas/agent.schema.json"
SECRETS_FILE = "secrets/index.yaml"


@dataclass(frozen=True, slots=True)
class EffectiveAgent:
    """An agent after layering: its settings, where each value came from, and its entry."""

    agent: Agent
    provenance: Provenance
    entry: SourceSpan

    @property
    def name(self) -> str:
        return self.agent.name


@dataclass(frozen=True)
class Repo:
    """A loaded, valid config repo."""

    fleet: FleetFile
    tiers: dict[str, TierFile]
    shards: dict[str, ShardFile]
    agents: dict[str, EffectiveAgent]
    payload_schema: PayloadSchema
    secrets: frozenset[str]
    alerts: dict[str, AlertsFile] = field(default_factory=dict)

    def agent(self, name: str) -> EffectiveAgent:
        return self.agents[name]


class _Collector:
    """Loads files and collects errors instead of stopping at the first."""

    def __init__(self, files: Mapping[str, bytes], prefix: str) -> None:
        self.files = files
        self.prefix = prefix
        self.errors: list[ConfigError] = []

    def label(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    def doc(self, rel: str) -> Doc | None:
        try:
            return load_yaml(self.label(rel), self.files[rel])
        except ConfigError as exc:
            self.errors.append(exc)
            return None

    def missing(self, rel: str, why: str) -> None:
        self.errors.append(
            ConfigError(
                SourceSpan(self.label(rel), 1, 1), "repo.missing-file", f"{rel} is missing: {why}"
            )
        )


def _tier_name(rel: str) -> str:
    return rel.removeprefix("agents/tier-").removesuffix(".yaml")


def _shard_name(rel: str) -> str:
    return rel.removeprefix("shards/").removesuffix(".yaml")


def _settings_layer(name: str, doc: Doc, skip: frozenset[str] = frozenset()) -> Layer:
    """A layer file's settings; only called once the file has passed its shape check."""
    value = {k: v for k, v in (doc.value or {}).items() if k not in skip}
    return Layer(name, value, doc.loc)


_FILE_ONLY = frozenset({"description", "gates"})  # file settings, not agent settings


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while loading; refcounting still frees everything we make."""
    # A big repo loads into millions of small acyclic objects (values, spans, provenance);
    # the GC's passes over them cost a third of the load time at 10,000 agents.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_repo(files: Mapping[str, bytes], prefix: str = "") -> Repo:
    """Load and validate a whole config repo from its files; raise ConfigErrors on any error."""
    with _gc_paused():
        return _load_repo(files, prefix)


def _load_repo(files: Mapping[str, bytes], prefix: str) -> Repo:  # noqa: PLR0915
    from reconciler.config.validate import validate_repo  # noqa: PLC0415 (validate uses Repo)

    c = _Collector(files, prefix)

    fleet: FleetFile | None = None
    fleet_doc: Doc | None = None
    if FLEET_FILE not in files:
        c.missing(FLEET_FILE, "every config repo needs fleet.yaml with at least fleet_id")
    else:
        fleet_doc = c.doc(FLEET_FILE)
        if fleet_doc is not None:
            fleet, errs = check_shape(FleetFile, fleet_doc)
            c.errors.extend(errs)

    payload_schema: PayloadSchema | None = None
    if PAYLOAD_SCHEMA_FILE not in files:
        c.missing(PAYLOAD_SCHEMA_FILE, "the JSON Schema of the agents' config payload")
    else:
        try:
            payload_schema = load_payload_schema(
                c.label(PAYLOAD_SCHEMA_FILE), files[PAYLOAD_SCHEMA_FILE]
            )
        except ConfigError as exc:
            c.errors.append(exc)

    secrets: set[str] = set()
    secrets_doc: Doc | None = None
    if SECRETS_FILE in files:
        secrets_doc = c.doc(SECRETS_FILE)
        if secrets_doc is not None:
            index, errs = check_shape(SecretsIndex, secrets_doc)
            c.errors.extend(errs)
            if index is not None:
                secrets = {s.name for s in index.secrets}

    # A layer file that does not load or has the wrong shape is reported once; the agents
    # that depend on it are not layered, since their errors would only echo it.
    broken: set[str] = set()
    base_layer: Layer | None = None
    if BASE_FILE in files:
        base_doc = c.doc(BASE_FILE)
        base = check_shape(BaseFile, base_doc) if base_doc is not None else (None, [])
        c.errors.extend(base[1])
        if base_doc is not None and base[0] is not None:
            base_layer = _settings_layer("base", base_doc, _FILE_ONLY)
        else:
            broken.add(BASE_FILE)

    tiers: dict[str, TierFile] = {}
    tier_layers: dict[str, Layer] = {}
    for rel in sorted(f for f in files if f.startswith("agents/tier-") and f.endswith(".yaml")):
        name = _tier_name(rel)
        doc = c.doc(rel)
        tier, errs = check_shape(TierFile, doc) if doc is not None else (None, [])
        c.errors.extend(errs)
        if doc is not None and tier is not None:
            tier_layers[name] = _settings_layer(f"tier {name}", doc, _FILE_ONLY)
            tiers[name] = tier
        else:
            broken.add(name)

    shards: dict[str, ShardFile] = {}
    shard_docs: dict[str, Doc] = {}
    for rel in sorted(f for f in files if f.startswith("shards/") and f.endswith(".yaml")):
        doc = c.doc(rel)
        if doc is None:
            continue
        shard, errs = check_shape(ShardFile, doc)
        c.errors.extend(errs)
        if shard is not None:
            shards[_shard_name(rel)] = shard
            shard_docs[_shard_name(rel)] = doc

    alerts: dict[str, AlertsFile] = {}
    for rel in sorted(f for f in files if f.startswith("alerts/") and f.endswith(".yaml")):
        doc = c.doc(rel)
        if doc is not None:
            rules, errs = check_shape(AlertsFile, doc)
            c.errors.extend(errs)
            if rules is not None:
                alerts[rel] = rules

    agents = (
        {}
        if BASE_FILE in broken
        else _layer_agents(c, fleet, fleet_doc, base_layer, tier_layers, shard_docs, shards, broken)
    )

    if c.errors or fleet is None or payload_schema is None or fleet_doc is None:
        raise ConfigErrors(c.errors)
    repo = Repo(fleet, tiers, shards, agents, payload_schema, frozenset(secrets), alerts)
    errors = validate_repo(repo, fleet_doc, shard_docs, secrets_doc, c.label)
    if errors:
        raise ConfigErrors(errors)
    return repo


def _connection_layer(fleet: FleetFile | None, fleet_doc: Doc | None, loc: Loc | None) -> Layer:
    """The fleet's SSH defaults as the lowest layer.

    When fleet.yaml itself is broken (its errors are already reported), its
    `connection:` is used if that part is valid, else the defaults, so that the
    agents are still checked without a cascade of "no user" errors.
    """
    if fleet is not None:
        conn = fleet.connection
    else:
        top = fleet_doc.value if fleet_doc else None
        raw = top.get("connection") if isinstance(top, dict) else None
        try:
            conn = Connection.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError:
            conn = Connection()
    value = {"user": conn.user, "port": conn.port, "key": conn.key, "known_hosts": conn.known_hosts}
    return Layer("fleet connection", {k: v for k, v in value.items() if v is not None}, loc)


def _layer_agents(
    c: _Collector,
    fleet: FleetFile | None,
    fleet_doc: Doc | None,
    base: Layer | None,
    tiers: dict[str, Layer],
    shard_docs: dict[str, Doc],
    shards: dict[str, ShardFile],
    broken: set[str],
) -> dict[str, EffectiveAgent]:
    out: dict[str, EffectiveAgent] = {}
    fleet_loc = fleet_doc.loc.kids.get("connection") if fleet_doc and fleet_doc.loc.kids else None
    connection = _connection_layer(fleet, fleet_doc, fleet_loc)
    start, start_prov = fold([connection] + ([base] if base else []))
    prefixes: dict[tuple[str, str], tuple[dict[str, Any], Provenance]] = {}
    for shard_name, shard in shards.items():
        doc = shard_docs[shard_name]
        shard_loc = doc.loc.kids or {}
        defaults = (doc.value or {}).get("defaults") or {}
        shard_layer = Layer(f"shard {shard_name}", defaults, shard_loc.get("defaults"))
        entries_loc = shard_loc.get("agents")
        for i, entry in enumerate(shard.agents):
            if entry.tier in broken:
                continue
            entry_loc = entries_loc.kids[i] if entries_loc and entries_loc.kids else None
            entry_span = entry_loc.span if entry_loc else doc.loc.span
            key = (entry.tier, shard_name)
            if key not in prefixes:
                tier_layer = tiers.get(entry.tier)
                layers = [tier_layer, shard_layer] if tier_layer else [shard_layer]
                prefixes[key] = fold(layers, start, start_prov)
            raw_entry = doc.value["agents"][i]
            value, prov = fold([Layer(f"agent {entry.name}", raw_entry, entry_loc)], *prefixes[key])
            value["shard"] = shard_name
            try:
                agent = Agent.model_validate(value)
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(p) for p in err["loc"])
                    if err["type"] == "missing":
                        msg = (
                            f"agent {entry.name!r} has no {where}: set it in the agent entry, "
                            f"its shard's defaults, tier-{entry.tier}.yaml or _base.yaml"
                        )
                        c.errors.append(ConfigError(entry_span, "schema.required", msg))
                    else:
                        setter = prov.get(tuple(str(p) for p in err["loc"]))
                        span = setter[-1].span if setter and setter[-1].span else entry_span
                        c.errors.append(
                            ConfigError(
                                span, "schema.value", f"agent {entry.name!r}: {where}: {err['msg']}"
                            )
                        )
                continue
            if agent.name not in out:
                out[agent.name] = EffectiveAgent(agent, prov, entry_span)
    return out


def payload_json(agent: Agent) -> str:
    """The payload as canonical JSON (sorted keys): a cache key for per-payload checks."""
    return json.dumps(agent.config, sort_keys=True, default=str)
