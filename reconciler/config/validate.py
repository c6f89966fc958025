"""The rules across files: meaning, after every file has the right shape.

Each rule appends `ConfigError`s; none stops the others, so one run of
`reconcile validate` lists everything that is wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.layer import winner
from reconciler.config.load import Doc
from reconciler.config.repo import EffectiveAgent, Repo, payload_json
from reconciler.config.shape import describe
from reconciler.model.fleet import PERCENT_RE


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


def _waves(repo: Repo, fleet_doc: Doc) -> list[ConfigError]:
    errors: list[ConfigError] = []
    waves = repo.fleet.rollout.waves
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
                    f"write {entry} for a count or {entry}% for a percentage"
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
    budget = repo.fleet.rollout.failure_budget
    if isinstance(budget, str):
        m = PERCENT_RE.match(budget)
        if m is None or not 0 <= float(m.group(1)) <= 100:
            errors.append(
                ConfigError(
                    loc.find(("rollout", "failure_budget")),
                    "wave.invalid",
                    f"failure_budget {budget!r} is neither a count nor a percentage in [0%, 100%]",
                )
            )
    return errors


def _entries(
    shard_docs: dict[str, Doc],
) -> Iterator[tuple[str, dict[str, Any], SourceSpan, Doc, int]]:
    for shard, doc in shard_docs.items():
        for i, entry in enumerate((doc.value or {}).get("agents") or []):
            yield shard, entry, doc.loc.find(("agents", i)), doc, i


def validate_repo(
    repo: Repo,
    fleet_doc: Doc,
    shard_docs: dict[str, Doc],
    secrets_doc: Doc | None,
    label: Callable[[str], str],
) -> list[ConfigError]:
    """Every cross-file rule broken by a repo whose files each have the right shape."""
    errors = _waves(repo, fleet_doc)

    for shard, doc in shard_docs.items():
        declared = (doc.value or {}).get("shard")
        if declared is not None and declared != shard:
            errors.append(
                ConfigError(
                    doc.loc.find(("shard",)),
                    "shard.name-mismatch",
                    f"shard: {declared!r} in shards/{shard}.yaml; make them equal",
                )
            )

    seen: dict[str, SourceSpan] = {}
    for _, entry, span, doc, i in _entries(shard_docs):
        name, tier = entry["name"], entry["tier"]
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
        if tier not in repo.tiers:
            near = difflib.get_close_matches(tier, sorted(repo.tiers), n=1, cutoff=0.6)
            hint = (
                f"did you mean {near[0]!r}?"
                if near
                else f"known tiers: {', '.join(sorted(repo.tiers)) or 'none'}"
            )
            errors.append(
                ConfigError(
                    doc.loc.find(("agents", i, "tier")),
                    "tier.unknown",
                    f"agent {name!r} names tier {tier!r}, which has no agents/tier-{tier}.yaml;"
                    f" {hint}",
                )
            )

    if not seen:
        errors.append(
            ConfigError(
                SourceSpan(label("fleet.yaml"), 1, 1),
                "fleet.empty",
                "the fleet has no agents; an empty fleet is refused"
                " (it is never read as 'delete everything')",
            )
        )

    targets: dict[tuple[str, int, str], str] = {}
    for ea in repo.agents.values():
        a = ea.agent
        if a.target in targets:
            errors.append(
                ConfigError(
                    ea.entry,
                    "agent.duplicate-target",
                    f"agent {a.name!r} writes {a.host}:{a.port}:{a.config_path},"
                    f" as agent {targets[a.target]!r} does",
                )
            )
        else:
            targets[a.target] = a.name
        for field in ("config_path", "secrets_path"):
            value = getattr(a, field)
            if value is not None and not value.startswith("/"):  # PurePosixPath.is_absolute
                errors.append(
                    ConfigError(
                        _span(ea, (field,)),
                        "agent.relative-path",
                        f"agent {a.name!r}: {field} {value!r} must be an absolute path on the box",
                    )
                )

    if secrets_doc is not None:
        names: dict[str, int] = {}
        for i, decl in enumerate((secrets_doc.value or {}).get("secrets") or []):
            if decl["name"] in names:
                errors.append(
                    ConfigError(
                        secrets_doc.loc.find(("secrets", i)),
                        "secret.duplicate",
                        f"secret {decl['name']!r} is declared twice",
                    )
                )
            names[decl["name"]] = i

    errors.extend(_payload_errors(repo))
    return _dedupe(errors)


def _payload_errors(repo: Repo) -> list[ConfigError]:
    found: dict[tuple[SourceSpan, str, str], list[str]] = {}
    # Most agents of a tier and shard share one payload: check each distinct payload once.
    checked: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
    for ea in repo.agents.values():
        payload = ea.agent.config
        key = payload_json(ea.agent)
        problems = checked.get(key)
        if problems is None:
            problems = checked[key] = [
                (path, "payload.schema", message)
                for path, message in repo.payload_schema.errors(payload)
            ]
            for path, name in secret_refs(payload, ()):
                if name not in repo.secrets:
                    dotted = ".".join(path)
                    msg = f"config.{dotted}: secret {name!r} is not declared in secrets/index.yaml"
                    problems.append((path, "secret.undeclared", msg))
        for path, rule, message in problems:
            found.setdefault((_span(ea, ("config", *path)), rule, message), []).append(ea.name)
    out: list[ConfigError] = []
    for (span, rule, message), agents in found.items():
        more = f" and {len(agents) - 1} more" if len(agents) > 1 else ""
        out.append(ConfigError(span, rule, f"{message} (agent {agents[0]}{more})"))
    return out


def _dedupe(errors: list[ConfigError]) -> list[ConfigError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out
