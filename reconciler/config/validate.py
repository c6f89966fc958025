"""The rules across files: meaning, on every part of the repo that has the right shape.

Each rule appends `ConfigError`s; none stops the others, so one run of
`reconcile validate` lists everything that is wrong. The rules run even when
some file broke its shape (those errors are reported by repo.py): they look
only at the parts that passed (`Parts`), so a broken file never causes a
second, follow-on error here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from reconciler.config.alerts import alert_errors
from reconciler.config.boundary import boundary_errors, normal
from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.layer import winner
from reconciler.config.load import Doc
from reconciler.config.payload import PayloadSchema
from reconciler.config.promrules import prometheus_errors
from reconciler.config.repo import EffectiveAgent, Parts, payload_json
from reconciler.config.secretscan import clip, quoted, quoted_path, shown_key
from reconciler.config.shape import describe
from reconciler.model.fleet import PERCENT_RE, FleetFile, probe_host_refusal


def secret_refs(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every `{secret: NAME}` reference in a payload, with its path."""
    if isinstance(value, dict):
        if set(value) == {"secret"} and isinstance(value["secret"], str):
            yield path, value["secret"]
            return
        for key, sub in value.items():
            yield from secret_refs(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from secret_refs(sub, (*path, str(i)))


def _span(ea: EffectiveAgent, path: tuple[str, ...]) -> SourceSpan:
    """The line that set a value of an agent (or the agent's entry when none did)."""
    for cut in range(len(path), 0, -1):
        w = winner(ea.provenance, path[:cut])
        if w is not None and w.span is not None:
            return w.span
    return ea.entry


def _waves(fleet: FleetFile, fleet_doc: Doc) -> list[ConfigError]:
    errors: list[ConfigError] = []
    waves = fleet.rollout.waves
    loc = fleet_doc.loc

    def at(i: int) -> SourceSpan:
        return loc.find(("rollout", "waves", i))

    counts: list[int] = []
    percents: list[float] = []
    for i, entry in enumerate(waves):
        if isinstance(entry, bool) or not isinstance(entry, int | str):
            errors.append(
                ConfigError(
                    at(i),
                    "wave.invalid",
                    f"wave {i + 1}: {describe(entry)} is not a count or a percentage",
                )
            )
        elif isinstance(entry, int):
            if entry <= 0:
                errors.append(
                    ConfigError(
                        at(i),
                        "wave.invalid",
                        f"wave {i + 1}: a count must be positive, got {entry}",
                    )
                )
            elif percents:
                errors.append(
                    ConfigError(
                        at(i),
                        "wave.order",
                        f"wave {i + 1}: count {entry} after a percentage; put counts first",
                    )
                )
            elif counts and entry <= counts[-1]:
                errors.append(
                    ConfigError(
                        at(i),
                        "wave.order",
                        f"wave {i + 1}: {entry} does not increase on {counts[-1]}",
                    )
                )
            else:
                counts.append(entry)
        else:
            m = PERCENT_RE.match(entry)
            if m is None:
                hint = (
                    f"write {clip(entry)} for a count or {clip(entry)}% for a percentage"
                    if entry.strip().isdigit()
                    else "write a count like 5 or a percentage like 25%"
                )
                errors.append(
                    ConfigError(
                        at(i),
                        "wave.invalid",
                        f"wave {i + 1}: {describe(entry)} is neither a count nor a percentage"
                        f"; {hint}",
                    )
                )
                continue
            pct = float(m.group(1))
            if not 0 < pct <= 100:
                errors.append(
                    ConfigError(
                        at(i), "wave.invalid", f"wave {i + 1}: {entry} is outside (0%, 100%]"
                    )
                )
            elif percents and pct <= percents[-1]:
                errors.append(
                    ConfigError(
                        at(i),
                        "wave.order",
                        f"wave {i + 1}: {entry} does not increase on {percents[-1]:g}%",
                    )
                )
            else:
                percents.append(pct)
    if not waves:
        errors.append(
            ConfigError(
                loc.find(("rollout", "waves")), "wave.last", "no waves: the last wave must be 100%"
            )
        )
    elif not errors and not (percents and percents[-1] == 100 and isinstance(waves[-1], str)):
        errors.append(
            ConfigError(
                at(len(waves) - 1),
                "wave.last",
                f"the last wave is {waves[-1]}; it must be 100% so the whole fleet is reached",
            )
        )
    budget = fleet.rollout.failure_budget
    if isinstance(budget, str):
        m = PERCENT_RE.match(budget)
        if m is None or not 0 <= float(m.group(1)) <= 100:
            errors.append(
                ConfigError(
                    loc.find(("rollout", "failure_budget")),
                    "wave.invalid",
                    f"failure_budget {quoted(budget)} is neither a count nor a percentage"
                    " in [0%, 100%]",
                )
            )
    return errors


def _near(name: str, known: list[str], what: str) -> str:
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if near:
        return f"did you mean {quoted(near[0])}?"
    return f"known {what}: {clip(', '.join(map(shown_key, known)), 200) or 'none'}"


def validate_repo(parts: Parts, label: Callable[[str], str]) -> list[ConfigError]:
    """Every cross-file rule broken by the parts of a repo that have the right shape."""
    errors = _waves(parts.fleet, parts.fleet_doc) if parts.fleet_doc is not None else []

    for shard, part in parts.shards.items():
        if part.declared is not None and part.declared != shard:
            errors.append(
                ConfigError(
                    part.doc.loc.find(("shard",)),
                    "shard.name-mismatch",
                    f"shard: {part.declared!r} in shards/{shard}.yaml; make them equal",
                )
            )

    seen: dict[str, SourceSpan] = {}
    tiers = sorted(parts.tier_names)
    for part in parts.shards.values():
        for i, name, tier in part.ids:
            span = part.doc.loc.find(("agents", i))
            if name in seen:
                errors.append(
                    ConfigError(
                        span,
                        "agent.duplicate-name",
                        f"agent {name!r} is already defined at {seen[name]}",
                    )
                )
            else:
                seen[name] = span
            if tier is not None and tier not in parts.tier_names:
                errors.append(
                    ConfigError(
                        part.doc.loc.find(("agents", i, "tier")),
                        "tier.unknown",
                        f"agent {name!r} names tier {tier!r}, which has no"
                        f" agents/tier-{tier}.yaml; {_near(tier, tiers, 'tiers')}",
                    )
                )

    # Empty only when every shard file was read and none lists an entry, right or wrong.
    if parts.shards_loaded and all(p.written == 0 for p in parts.shards.values()):
        errors.append(
            ConfigError(
                SourceSpan(label("fleet.yaml"), 1, 1),
                "fleet.empty",
                "the fleet has no agents; an empty fleet is refused"
                " (it is never read as 'delete everything')",
            )
        )

    targets: dict[tuple[str, int, str], str] = {}
    for ea in parts.agents.values():
        a = ea.agent
        # Compared normalised: /etc/agent/./config.yaml is the file /etc/agent/config.yaml is.
        target = (a.host, a.port, normal(a.config_path))
        if a.name in parts.unsure_targets:
            pass  # its target may come from a default standing in for a removed value
        elif target in targets:
            errors.append(
                ConfigError(
                    ea.entry,
                    "agent.duplicate-target",
                    f"agent {a.name!r} writes {clip(a.host)}:{a.port}:{quoted(a.config_path)},"
                    f" as agent {targets[target]!r} does",
                )
            )
        else:
            targets[target] = a.name
    # Paths under connection.allowed_paths, known_hosts outside the repo, no credentials.
    errors.extend(boundary_errors(parts))
    if parts.fleet_doc is not None:
        errors.extend(state_errors(parts.fleet.state, parts.fleet_doc))
    if parts.fleet_valid:  # a broken fleet.yaml is reported; its stand-in allows no host
        errors.extend(probe_host_errors(parts.agents, parts.fleet.connection.allowed_probe_hosts))

    if parts.secrets_doc is not None:
        raw = parts.secrets_doc.value
        decls = raw.get("secrets") if isinstance(raw, dict) else None
        names: dict[str, int] = {}
        for i, decl in enumerate(decls if isinstance(decls, list) else []):
            secret = decl.get("name") if isinstance(decl, dict) else None
            if not isinstance(secret, str):
                continue
            if secret in names:
                errors.append(
                    ConfigError(
                        parts.secrets_doc.loc.find(("secrets", i)),
                        "secret.duplicate",
                        f"secret {secret!r} is declared twice",
                    )
                )
            names[secret] = i

    errors.extend(
        _payload_errors(parts.agents, parts.payload_schema, parts.secrets, parts.salvaged)
    )
    errors.extend(alert_errors(parts, parts.alerts, dict(parts.docs)))
    errors.extend(prometheus_errors(parts))
    return dedupe(errors)


def state_errors(state: str | None, fleet_doc: Doc) -> list[ConfigError]:
    """fleet.yaml `state:` is a postgresql:// URL without a password (credentials never come
    from the repo); the error names the line, never the password."""
    if state is None:
        return []
    span = fleet_doc.loc.find(("state",))
    try:
        parts = urlsplit(state)
        password = parts.password
    except ValueError:
        parts, password = None, None
    if parts is None or parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        shown = state if "@" not in state else "…@" + state.rsplit("@", 1)[1]
        return [
            ConfigError(
                span,
                "state.not-postgresql",
                f"state: {quoted(shown)} is not a postgresql://USER@HOST:PORT/DATABASE URL"
                " (for a local directory use state_dir:)",
            )
        ]
    if password is not None:
        return [
            ConfigError(
                span,
                "state.password-in-url",
                "state: the URL holds a password; remove it and give it through PGPASSWORD,"
                " RECONCILER_STATE_PASSWORD or a passfile (docs/team.md), never the repo",
            )
        ]
    return []


_PROBE_FIELDS = ("health_url", "metrics_url")


def url_host(url: str) -> str | None:
    """The host a URL names (None: no host, or not a URL at all)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def probe_host_errors(
    agents: Mapping[str, EffectiveAgent], allowed: list[str]
) -> list[ConfigError]:
    """health_url and metrics_url name the agent's own host, or one fleet.yaml allows; never
    a link-local or metadata address (the rule the HTTP edge applies at run time)."""
    found: dict[tuple[SourceSpan, str], list[str]] = {}
    for ea in agents.values():
        a = ea.agent
        for field in _PROBE_FIELDS:
            url = a.url(getattr(a, field))
            host = url_host(url) if url is not None else None
            if host is None:
                continue
            why = probe_host_refusal(host, a.host, allowed)
            if why is None:
                continue
            fix = "" if "never probed" in why else f", or point {field} at the box itself"
            message = f"{field} {quoted_path(url)}: {why}{fix}"
            found.setdefault((_span(ea, (field,)), message), []).append(ea.name)
    out: list[ConfigError] = []
    for (span, message), names in found.items():
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        out.append(
            ConfigError(span, "connection.probe-host", f"{message} (agent {names[0]}{more})")
        )
    return out


def _payload_errors(
    agents: Mapping[str, EffectiveAgent],
    schema: PayloadSchema | None,
    secrets: frozenset[str] | None,
    salvaged: frozenset[str],
) -> list[ConfigError]:
    """Payload schema errors (unless the schema is broken) and undeclared secret references
    (unless the secrets index is broken). A salvaged agent is not told that a required key
    is absent: the value removed for its shape error may be what was meant to set it."""
    found: dict[tuple[SourceSpan, str, str], list[str]] = {}
    declared = sorted(secrets or ())
    # Most agents of a tier and shard share one payload: check each distinct payload once.
    checked: dict[str, list[tuple[tuple[str, ...], str, str, bool]]] = {}
    for ea in agents.values():
        payload = ea.agent.config
        key = payload_json(ea.agent)
        problems = checked.get(key)
        if problems is None:
            problems = checked[key] = [
                (path, "payload.schema", message, absent)
                for path, message, absent in (
                    schema.problems(payload) if schema is not None else ()
                )
            ]
            for path, name in secret_refs(payload, ()):
                if secrets is not None and name not in secrets:
                    dotted = ".".join(map(shown_key, path))
                    msg = (
                        f"config.{clip(dotted)}: secret {quoted(name)} is not declared in"
                        f" secrets/index.yaml; {_near(name, declared, 'secrets')}"
                    )
                    problems.append((path, "secret.undeclared", msg, False))
        partial = ea.name in salvaged
        for path, rule, message, absent in problems:
            if absent and partial:
                continue
            found.setdefault((_span(ea, ("config", *path)), rule, message), []).append(ea.name)
    out: list[ConfigError] = []
    for (span, rule, message), names in found.items():
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        out.append(ConfigError(span, rule, f"{message} (agent {names[0]}{more})"))
    return out


def dedupe(errors: list[ConfigError]) -> list[ConfigError]:
    """The errors, each once, in their first order."""
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out
