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
import difflib
import enum
import gc
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from reconciler.config.errors import ConfigError, ConfigErrors, SourceSpan
from reconciler.config.layer import Layer, Provenance, fold
from reconciler.config.load import Doc, load_yaml
from reconciler.config.payload import PayloadSchema, load_payload_schema
from reconciler.config.shape import FieldPath, check_shape, salvage
from reconciler.config.usage import usage_tier_errors
from reconciler.model.agent import (
    Agent,
    AgentEntry,
    AgentSettings,
    BaseFile,
    Name,
    ShardFile,
    TierFile,
)
from reconciler.model.fleet import AlertsFile, FleetFile, SecretsIndex, UsageFile

FLEET_FILE = "fleet.yaml"
BASE_FILE = "agents/_base.yaml"
PAYLOAD_SCHEMA_FILE = "schemas/agent.schema.json"
SECRETS_FILE = "secrets/index.yaml"
USAGE_FILE = "usage.yaml"  # expected traffic per tier, for cost estimates (docs/cost.md)


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
    usage: UsageFile | None = None

    def agent(self, name: str) -> EffectiveAgent:
        return self.agents[name]


class _Collector:
    """Loads files and collects errors instead of stopping at the first."""

    def __init__(self, files: Mapping[str, bytes], prefix: str) -> None:
        self.files = files
        self.prefix = prefix
        self.errors: list[ConfigError] = []
        self.docs: list[tuple[str, Doc]] = []

    def label(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    def doc(self, rel: str) -> Doc | None:
        try:
            doc = load_yaml(self.label(rel), self.files[rel])
        except ConfigError as exc:
            self.errors.append(exc)
            return None
        self.docs.append((rel, doc))
        return doc

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
L = TypeVar("L", BaseFile, TierFile)


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


class Loss(enum.IntEnum):
    """What shape errors removed from the settings an agent is layered from."""

    NONE = 0
    SETTINGS = 1  # some setting: the agent is not told it lacks what that may have set
    TARGET = 2  # maybe its host, port or config_path: nor is its target checked as unique


_TARGET_FIELDS: Final = frozenset({"host", "port", "config_path"})
_SETTING_FIELDS: Final = sorted({*AgentSettings.model_fields, "name", "tier"})


def _near_target(path: FieldPath, targets: Collection[str] = _TARGET_FIELDS) -> bool:
    """Whether a removed settings path is, or looks like a misspelling of, a target field."""
    if not path:
        return True
    key = path[0]
    if key in targets:
        return True
    if key in _SETTING_FIELDS:
        return False
    near = difflib.get_close_matches(key, [*_SETTING_FIELDS, *targets], n=1, cutoff=0.6)
    return bool(near) and near[0] in targets


def _loss(dropped: Iterable[FieldPath], under: FieldPath = ()) -> Loss:
    """The loss of the settings map at `under`, from the paths a salvage removed."""
    loss = Loss.NONE
    for path in dropped:
        if path[: len(under)] != under and path != under[: len(path)]:
            continue
        rel = path[len(under) :]
        if rel[:1] and rel[0] in _FILE_ONLY:
            continue
        if _near_target(rel):
            return Loss.TARGET
        loss = Loss.SETTINGS
    return loss


@dataclass(frozen=True, slots=True)
class ShardEntry:
    """One agent entry of a shard file, with the right shape or salvaged."""

    index: int
    entry: AgentEntry
    value: dict[str, Any]  # its settings as layered (less what broke its shape)
    loss: Loss


@dataclass(frozen=True, slots=True)
class ShardPart:
    """A shard file as far as it has the right shape (all of it, in a valid repo)."""

    name: str
    doc: Doc
    declared: str | None  # its `shard:`, when that is valid
    defaults: dict[str, Any]  # its defaults, less what broke their shape
    defaults_loss: Loss
    entries: tuple[ShardEntry, ...]  # the entries that can be layered
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
    defaults for the rest (`salvage`), or is left out of the rules it would only
    echo into: the agents layered from a salvaged part (`salvaged`) are not checked
    for what a removed value might have set (a required field or payload key; a
    unique target, for `unsure_targets`); a broken secrets index (`secrets` None)
    leaves references unchecked.
    """

    fleet: FleetFile
    fleet_doc: Doc | None
    tier_names: frozenset[str]  # every tier file, valid or not
    shards: dict[str, ShardPart]
    shards_loaded: bool  # every shard file loaded as YAML
    agents: dict[str, EffectiveAgent]
    salvaged: frozenset[str]  # agents layered from a part of a file that broke its shape
    unsure_targets: frozenset[str]  # of those, agents whose host, port or path may be off
    payload_schema: PayloadSchema | None
    secrets: frozenset[str] | None
    secrets_doc: Doc | None
    fleet_valid: bool = True  # fleet.yaml loaded and passed its shape check
    docs: tuple[tuple[str, Doc], ...] = ()  # every YAML file that loaded, by repo path
    root: str | None = None  # the repo's directory, when the snapshot knows it
    alerts: Mapping[str, AlertsFile] = field(default_factory=dict)  # alerts files of right shape


# fleet_id's stand-in while fleet.yaml's own is missing or invalid (that error is reported).
_FLEET_ID_STAND_IN = "unknown"


def _fleet(c: _Collector, doc: Doc | None) -> tuple[FleetFile, Loss]:
    """fleet.yaml's settings, and what its shape errors removed from the agents' port.

    Every connection setting has a default, so a removed one leaves no agent without a
    setting; only the port is part of a box's identity.
    """
    if doc is None:
        return FleetFile(fleet_id=_FLEET_ID_STAND_IN), Loss.NONE
    fleet, errs = check_shape(FleetFile, doc)
    if fleet is not None:
        return fleet, Loss.NONE
    c.errors.extend(errs)
    s = salvage(FleetFile, doc.value, {"fleet_id": _FLEET_ID_STAND_IN})
    port = any(p in {(), ("connection",)} or _near_target(p[1:], {"port"}) for p in s.dropped
               if p[:1] in {(), ("connection",)})  # fmt: skip
    return s.model or FleetFile(fleet_id=_FLEET_ID_STAND_IN), Loss.TARGET if port else Loss.NONE


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


def _layer_file(
    c: _Collector, model: type[L], name: str, doc: Doc | None
) -> tuple[Layer | None, Loss, L | None]:
    """A layer file's settings as a layer (None: nothing usable), what its shape errors
    removed, and the file's model when it has the right shape.

    A file with the wrong shape is reported once; its valid part is still layered, so
    the agents below it are checked, but not for what a removed value might have set.
    """
    if doc is None:
        return None, Loss.TARGET, None
    checked, errs = check_shape(model, doc)
    if checked is not None:
        return _settings_layer(name, doc, _FILE_ONLY), Loss.NONE, checked
    c.errors.extend(errs)
    s = salvage(model, doc.value)
    if () in s.dropped:  # not a map at all
        return None, Loss.TARGET, None
    value = {k: v for k, v in s.value.items() if k not in _FILE_ONLY}
    return Layer(name, value, doc.loc), _loss(s.dropped), None


def _shard_part(c: _Collector, name: str, doc: Doc) -> tuple[ShardPart, ShardFile | None]:
    shard, errs = check_shape(ShardFile, doc)
    raw = doc.value if isinstance(doc.value, dict) else {}
    raw_agents = raw.get("agents")
    if shard is not None:
        given: list[Any] = raw_agents if isinstance(raw_agents, list) else []
        entries = tuple(ShardEntry(i, e, given[i], Loss.NONE) for i, e in enumerate(shard.agents))
        named = tuple((e.index, e.entry.name, e.entry.tier) for e in entries)
        defaults = raw.get("defaults") or {}
        part = ShardPart(name, doc, shard.shard, defaults, Loss.NONE, entries, named, len(entries))
        return part, shard
    c.errors.extend(errs)
    top = salvage(ShardFile, {k: v for k, v in raw.items() if k != "agents"})
    lost = _loss(top.dropped, ("defaults",))
    entries_ok: list[ShardEntry] = []
    ids: list[tuple[int, str, str | None]] = []
    written: int | None = None
    if isinstance(doc.value, dict) and isinstance(raw_agents, list):
        written = len(raw_agents)
        for i, given in enumerate(raw_agents):
            entry = salvage(AgentEntry, given)
            if entry.model is not None:
                entries_ok.append(ShardEntry(i, entry.model, entry.value, _loss(entry.dropped)))
                ids.append((i, entry.model.name, entry.model.tier))
                continue
            fields: dict[str, Any] = given if isinstance(given, dict) else {}
            agent_name, tier = _valid_name(fields.get("name")), _valid_name(fields.get("tier"))
            if agent_name is not None:
                ids.append((i, agent_name, tier))
    declared = top.model.shard if top.model is not None else None
    defaults = top.value.get("defaults") or {}
    part = ShardPart(name, doc, declared, defaults, lost, tuple(entries_ok), tuple(ids), written)
    return part, None


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
    shape_errors = len(c.errors)
    fleet, fleet_loss = _fleet(c, fleet_doc)
    fleet_valid = fleet_doc is not None and len(c.errors) == shape_errors

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

    # A layer file that does not load, or is not a map at all, is reported once; the agents
    # that depend on it are not layered, since their errors would only echo it. One with
    # other shape errors is layered by its valid part, and what it lost is noted (`losses`).
    broken: set[str] = set()
    losses: dict[str, Loss] = {FLEET_FILE: fleet_loss}
    base_layer: Layer | None = None
    if BASE_FILE in files:
        base_layer, losses[BASE_FILE], _ = _layer_file(c, BaseFile, "base", c.doc(BASE_FILE))
        if base_layer is None:
            broken.add(BASE_FILE)

    tiers: dict[str, TierFile] = {}
    tier_layers: dict[str, Layer] = {}
    tier_files = sorted(f for f in files if f.startswith("agents/tier-") and f.endswith(".yaml"))
    for rel in tier_files:
        name = _tier_name(rel)
        layer, losses[name], tier = _layer_file(c, TierFile, f"tier {name}", c.doc(rel))
        if layer is None:
            broken.add(name)
            continue
        tier_layers[name] = layer
        if tier is not None:
            tiers[name] = tier

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
    for rel in sorted(
        f for f in files if f.startswith("alerts/") and f.endswith(".yaml") and f.count("/") == 1
    ):
        doc = c.doc(rel)
        if doc is not None:
            rules, errs = check_shape(AlertsFile, doc)
            c.errors.extend(errs)
            if rules is not None:
                alerts[rel] = rules

    usage: UsageFile | None = None
    if USAGE_FILE in files:
        usage_doc = c.doc(USAGE_FILE)
        if usage_doc is not None:
            usage, errs = check_shape(UsageFile, usage_doc)
            c.errors.extend(errs)
            if usage is not None:
                c.errors.extend(usage_tier_errors(usage, usage_doc, tier_files, c.label))

    agents: dict[str, EffectiveAgent] = {}
    agent_losses: dict[str, Loss] = {}
    if BASE_FILE not in broken:
        agents, agent_losses = _layer_agents(
            c, fleet, fleet_doc, base_layer, tier_layers, parts, broken, losses
        )

    found = Parts(
        fleet=fleet,
        fleet_doc=fleet_doc,
        tier_names=frozenset(_tier_name(rel) for rel in tier_files),
        shards=parts,
        shards_loaded=shards_loaded,
        agents=agents,
        salvaged=frozenset(agent_losses),
        unsure_targets=frozenset(a for a, loss in agent_losses.items() if loss is Loss.TARGET),
        payload_schema=payload_schema,
        secrets=secrets,
        secrets_doc=secrets_doc,
        fleet_valid=fleet_valid,
        docs=tuple(c.docs),
        root=getattr(files, "root", None),
        alerts=alerts,
    )
    errors = dedupe([*c.errors, *validate_repo(found, c.label)])
    if errors or payload_schema is None or secrets is None:
        raise ConfigErrors(errors)
    return Repo(fleet, tiers, shards, agents, payload_schema, secrets, alerts, usage)


def _layer_agents(
    c: _Collector,
    fleet: FleetFile,
    fleet_doc: Doc | None,
    base: Layer | None,
    tiers: dict[str, Layer],
    shards: dict[str, ShardPart],
    broken: set[str],
    losses: dict[str, Loss],
) -> tuple[dict[str, EffectiveAgent], dict[str, Loss]]:
    """Every agent that can be layered, and the loss of each one layered from a salvaged
    part of a file (`losses`: by file, base and tier name).

    An agent layered from a salvaged part is not reported for a setting it lacks: the
    removed value (already reported) may be what was meant to set it.
    """
    out: dict[str, EffectiveAgent] = {}
    lost: dict[str, Loss] = {}
    above = max(losses.get(FLEET_FILE, Loss.NONE), losses.get(BASE_FILE, Loss.NONE))
    fleet_loc = fleet_doc.loc.kids.get("connection") if fleet_doc and fleet_doc.loc.kids else None
    conn = fleet.connection
    value = {"user": conn.user, "port": conn.port, "key": conn.key, "known_hosts": conn.known_hosts}
    connection = Layer(
        "fleet connection", {k: v for k, v in value.items() if v is not None}, fleet_loc
    )
    start, start_prov = fold([connection] + ([base] if base else []))
    prefixes: dict[tuple[str, str], tuple[dict[str, Any], Provenance]] = {}
    for shard_name, part in shards.items():
        shard_loc = part.doc.loc.kids or {}
        shard_layer = Layer(f"shard {shard_name}", part.defaults, shard_loc.get("defaults"))
        entries_loc = shard_loc.get("agents")
        for e in part.entries:
            entry = e.entry
            if entry.tier in broken:
                continue
            loss = max(above, losses.get(entry.tier, Loss.NONE), part.defaults_loss, e.loss)
            partial = loss is not Loss.NONE
            entry_loc = entries_loc.kids[e.index] if entries_loc and entries_loc.kids else None
            entry_span = entry_loc.span if entry_loc else part.doc.loc.span
            key = (entry.tier, shard_name)
            if key not in prefixes:
                tier_layer = tiers.get(entry.tier)
                layers = [tier_layer, shard_layer] if tier_layer else [shard_layer]
                prefixes[key] = fold(layers, start, start_prov)
            value, prov = fold([Layer(f"agent {entry.name}", e.value, entry_loc)], *prefixes[key])
            value["shard"] = shard_name
            try:
                agent = Agent.model_validate(value)
            except ValidationError as exc:
                stood_in = _with_stand_ins(value, exc) if partial else None
                if stood_in is not None and stood_in.name not in out:  # its payload is checked
                    out[stood_in.name] = EffectiveAgent(stood_in, prov, entry_span)
                    lost[stood_in.name] = Loss.TARGET
                    continue
                for err in exc.errors():
                    where = ".".join(str(p) for p in err["loc"])
                    if err["type"] == "missing":
                        if partial:
                            continue
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
                if partial:
                    lost[agent.name] = loss
    return out, lost


# Stand-ins for what a salvaged agent lacks, so that its payload is still checked. Such an
# agent is left out of the rules its reachability decides (unique targets); its missing
# settings are not reported: the value removed for a shape error may be what set them.
_STAND_INS: dict[str, Any] = {"host": "unknown", "user": "unknown", "config_path": "/unknown"}


def _with_stand_ins(value: dict[str, Any], exc: ValidationError) -> Agent | None:
    """The agent with stand-ins for its missing settings, if only those are wrong."""
    missing = [e["loc"][0] for e in exc.errors() if e["type"] == "missing" and len(e["loc"]) == 1]
    if len(missing) != len(exc.errors()) or not all(k in _STAND_INS for k in missing):
        return None
    try:
        return Agent.model_validate({**value, **{str(k): _STAND_INS[str(k)] for k in missing}})
    except ValidationError:
        return None


def payload_json(agent: Agent) -> str:
    """The payload as canonical JSON (sorted keys): a cache key for per-payload checks."""
    return json.dumps(agent.config, sort_keys=True, default=str)
