"""A config repo, loaded: every file checked, every agent layered, every error collected.

`load_repo(files)` takes the repo's files as a path -> bytes map and returns a
`Repo`, or raises `ConfigErrors` holding every problem found (never only the
first). Steps: safe-load each YAML file; check each file's shape against its
model; fold fleet connection < base < tier < shard defaults < agent for every
agent (sharing the folded prefix of each tier and shard); check each effective
agent and its payload; then the rules across files (validate.py).

A shape error stops nothing: the rules across files still run on every part
that has the right shape (`Parts`), with defaults standing in for a broken part
of fleet.yaml, and leave out only what would merely echo an error already
reported (the agents of a broken layer file, references to a broken index).
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from reconciler.config.errors import ConfigError, ConfigErrors, SourceSpan
from reconciler.config.layer import Layer, Provenance, fold
from reconciler.config.load import Doc, load_yaml
from reconciler.config.payload import PayloadSchema, load_payload_schema
from reconciler.config.shape import check_shape, salvage
from reconciler.model.agent import Agent, AgentEntry, BaseFile, Name, ShardFile, TierFile
from reconciler.model.fleet import AlertsFile, FleetFile, SecretsIndex

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


@dataclass(frozen=True, slots=True)
class ShardPart:
    """A shard file as far as it has the right shape (all of it, in a valid repo)."""

    name: str
    doc: Doc
    declared: str | None  # its `shard:`, when that is valid
    defaults_ok: bool  # else its agents are not layered: their errors would only echo it
    entries: tuple[tuple[int, AgentEntry], ...]  # the entries with the right shape, by index
    # Each entry's valid name and tier (None: invalid), by index, also from entries that break
    # their shape otherwise: a duplicate name or an unknown tier there is an error of its own.
    ids: tuple[tuple[int, str, str | None], ...]
    # Entries in the file, right or not; None when a broken file has no `agents:` list, so
    # an empty fleet is not claimed on the strength of a misspelt key.
    written: int | None


@dataclass(frozen=True)
class Parts:
    """What the rules across files look at: each part that passed its shape check.

    A file with shape errors (already reported) stands in by its valid part and
    defaults for the rest, or is left out of the rules it would only echo into:
    the fleet is `salvage`d, a broken shard keeps its valid entries, a broken
    secrets index (`secrets` None) leaves references unchecked.
    """

    fleet: FleetFile
    fleet_doc: Doc | None
    tier_names: frozenset[str]  # every tier file, valid or not
    shards: dict[str, ShardPart]
    shards_loaded: bool  # every shard file loaded as YAML
    agents: dict[str, EffectiveAgent]
    payload_schema: PayloadSchema | None
    secrets: frozenset[str] | None
    secrets_doc: Doc | None


# fleet_id's stand-in while fleet.yaml's own is missing or invalid (that error is reported).
_FLEET_ID_STAND_IN = "unknown"


def _fleet(c: _Collector, doc: Doc | None) -> FleetFile:
    """fleet.yaml's settings; when it breaks its shape, its valid part over the defaults."""
    if doc is None:
        return FleetFile(fleet_id=_FLEET_ID_STAND_IN)
    fleet, errs = check_shape(FleetFile, doc)
    if fleet is not None:
        return fleet
    c.errors.extend(errs)
    return salvage(FleetFile, doc.value, {"fleet_id": _FLEET_ID_STAND_IN})[0]


def _secret_names(c: _Collector, doc: Doc) -> frozenset[str] | None:
    """The declared secret names; None when the index is broken so that one is unknown."""
    index, errs = check_shape(SecretsIndex, doc)
    if index is not None:
        return frozenset(s.name for s in index.secrets)
    c.errors.extend(errs)
    # Its names are known only when `secrets:` is still a list of entries that each name one
    # (a misspelt `secrets:` key or an entry without a name leaves them unknown).
    entries = doc.value.get("secrets") if isinstance(doc.value, dict) else None
    if not isinstance(entries, list):
        return None
    names = [e.get("name") if isinstance(e, dict) else None for e in entries]
    if not all(isinstance(n, str) for n in names):
        return None
    return frozenset(n for n in names if isinstance(n, str))


def _shard_part(c: _Collector, name: str, doc: Doc) -> tuple[ShardPart, ShardFile | None]:
    shard, errs = check_shape(ShardFile, doc)
    if shard is not None:
        valid = tuple(enumerate(shard.agents))
        named = tuple((i, e.name, e.tier) for i, e in valid)
        return ShardPart(name, doc, shard.shard, True, valid, named, len(valid)), shard
    c.errors.extend(errs)
    raw = doc.value if isinstance(doc.value, dict) else {}
    top, dropped = salvage(ShardFile, {k: v for k, v in raw.items() if k != "agents"})
    defaults_ok = isinstance(doc.value, dict) and not any(
        p[:1] in {(), ("defaults",)} for p in dropped
    )
    raw_agents = raw.get("agents")
    ok: list[tuple[int, AgentEntry]] = []
    ids: list[tuple[int, str, str | None]] = []
    written: int | None = None
    if isinstance(raw_agents, list):
        written = len(raw_agents)
        for i, entry in enumerate(raw_agents):
            try:
                ok.append((i, AgentEntry.model_validate(entry)))
                ids.append((i, ok[-1][1].name, ok[-1][1].tier))
            except ValidationError:
                given = entry if isinstance(entry, dict) else {}
                agent_name, tier = _valid_name(given.get("name")), _valid_name(given.get("tier"))
                if agent_name is not None:
                    ids.append((i, agent_name, tier))
    parts = ShardPart(name, doc, top.shard, defaults_ok, tuple(ok), tuple(ids), written)
    return parts, None


_NAME: TypeAdapter[str] = TypeAdapter(Name, config=ConfigDict(strict=True))


def _valid_name(value: Any) -> str | None:
    """`value` when it is a valid agent or tier name, else None."""
    try:
        return _NAME.validate_python(value)
    except ValidationError:
        return None


def _load_repo(files: Mapping[str, bytes], prefix: str) -> Repo:  # noqa: PLR0915
    from reconciler.config.validate import dedupe, validate_repo  # noqa: PLC0415 (uses Parts)

    c = _Collector(files, prefix)

    fleet_doc: Doc | None = None
    if FLEET_FILE not in files:
        c.missing(FLEET_FILE, "every config repo needs fleet.yaml with at least fleet_id")
    else:
        fleet_doc = c.doc(FLEET_FILE)
    fleet = _fleet(c, fleet_doc)

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

    secrets: frozenset[str] | None = frozenset()
    secrets_doc: Doc | None = None
    if SECRETS_FILE in files:
        secrets_doc = c.doc(SECRETS_FILE)
        secrets = None if secrets_doc is None else _secret_names(c, secrets_doc)

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
    tier_files = sorted(f for f in files if f.startswith("agents/tier-") and f.endswith(".yaml"))
    for rel in tier_files:
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
    parts: dict[str, ShardPart] = {}
    shards_loaded = True
    for rel in sorted(f for f in files if f.startswith("shards/") and f.endswith(".yaml")):
        doc = c.doc(rel)
        if doc is None:
            shards_loaded = False
            continue
        part, shard = _shard_part(c, _shard_name(rel), doc)
        parts[part.name] = part
        if shard is not None:
            shards[part.name] = shard

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
        else _layer_agents(c, fleet, fleet_doc, base_layer, tier_layers, parts, broken)
    )

    found = Parts(
        fleet=fleet,
        fleet_doc=fleet_doc,
        tier_names=frozenset(_tier_name(rel) for rel in tier_files),
        shards=parts,
        shards_loaded=shards_loaded,
        agents=agents,
        payload_schema=payload_schema,
        secrets=secrets,
        secrets_doc=secrets_doc,
    )
    errors = dedupe([*c.errors, *validate_repo(found, c.label)])
    if errors or payload_schema is None or secrets is None:
        raise ConfigErrors(errors)
    return Repo(fleet, tiers, shards, agents, payload_schema, secrets, alerts)


def _layer_agents(
    c: _Collector,
    fleet: FleetFile,
    fleet_doc: Doc | None,
    base: Layer | None,
    tiers: dict[str, Layer],
    shards: dict[str, ShardPart],
    broken: set[str],
) -> dict[str, EffectiveAgent]:
    out: dict[str, EffectiveAgent] = {}
    fleet_loc = fleet_doc.loc.kids.get("connection") if fleet_doc and fleet_doc.loc.kids else None
    conn = fleet.connection
    value = {"user": conn.user, "port": conn.port, "key": conn.key, "known_hosts": conn.known_hosts}
    connection = Layer(
        "fleet connection", {k: v for k, v in value.items() if v is not None}, fleet_loc
    )
    start, start_prov = fold([connection] + ([base] if base else []))
    prefixes: dict[tuple[str, str], tuple[dict[str, Any], Provenance]] = {}
    for shard_name, part in shards.items():
        if not part.defaults_ok:
            continue
        doc = part.doc
        shard_loc = doc.loc.kids or {}
        defaults = (doc.value or {}).get("defaults") or {}
        shard_layer = Layer(f"shard {shard_name}", defaults, shard_loc.get("defaults"))
        entries_loc = shard_loc.get("agents")
        for i, entry in part.entries:
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
