"""The rules of alerts/*.yaml and fleet.yaml `alerting:` (docs/alerts.md), on the valid parts.

Metrics come from the catalogue (model/fleet.py ALERT_METRICS); a selector must name at
least one agent; routes must exist and name declared secrets. Each error points at the
line that breaks the rule and suggests the nearest known name for a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping

from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.load import Doc
from reconciler.config.repo import EffectiveAgent, Parts
from reconciler.config.secretscan import clip, quoted
from reconciler.model.fleet import ALERT_METRICS, AlertRule, AlertsFile

_LEVEL_KEEPS = {"agent": None, "tier": {"tier"}, "shard": {"shard"}, "fleet": set[str]()}


def _near(name: str, known: Iterable[str], what: str) -> str:
    names = sorted(known)
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if near:
        return f"did you mean {quoted(near[0])}?"
    return f"known {what}: {clip(', '.join(names), 200) or 'none'}"


def _matches(ea: EffectiveAgent, rule: AlertRule) -> bool:
    sel, a = rule.selector, ea.agent
    if sel.tier is not None and a.tier != sel.tier:
        return False
    if sel.shard is not None and a.shard != sel.shard:
        return False
    return all(a.labels.get(k) == v for k, v in sel.labels.items())


def _rule_errors(
    rule: AlertRule, at: Callable[..., SourceSpan], parts: Parts, routes: set[str]
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    name = rule.name
    if rule.promql is not None:
        mixed = [k for k in ("metric", "above", "below", "relative_to") if getattr(rule, k)]
        if rule.by != "agent":
            mixed.append("by")
        if mixed:
            errors.append(
                ConfigError(
                    at(mixed[0]),
                    "alert.condition",
                    f"alert {name!r} has promql and {', '.join(mixed)}: raw PromQL is the whole"
                    " condition; drop one or the other",
                )
            )
    elif rule.metric is None:
        errors.append(
            ConfigError(at(), "alert.condition", f"alert {name!r} needs a metric (or raw promql)")
        )
    elif rule.metric not in ALERT_METRICS:
        errors.append(
            ConfigError(
                at("metric"),
                "alert.unknown-metric",
                f"alert {name!r}: metric {quoted(rule.metric)} is not in the catalogue; "
                + _near(rule.metric, ALERT_METRICS, "metrics"),
            )
        )
    if rule.promql is None and rule.metric is not None:
        if (rule.above is None) == (rule.below is None):
            errors.append(
                ConfigError(
                    at("above") if rule.above is not None else at(),
                    "alert.condition",
                    f"alert {name!r} needs exactly one of above or below",
                )
            )
        if rule.relative_to == "tier" and rule.by != "agent":
            errors.append(
                ConfigError(
                    at("relative_to"),
                    "alert.relative-to",
                    f"alert {name!r}: relative_to: tier compares each agent with its tier; "
                    f"it needs by: agent, not by: {rule.by}",
                )
            )
        keeps = _LEVEL_KEEPS[rule.by]
        sel = rule.selector
        used = {k for k in ("tier", "shard") if getattr(sel, k) is not None} | set(sel.labels)
        if keeps is not None and used - keeps:
            errors.append(
                ConfigError(
                    at("selector"),
                    "alert.selector",
                    f"alert {name!r} is judged by {rule.by}, which keeps no "
                    f"{', '.join(sorted(used - keeps))} label to select on",
                )
            )
    errors.extend(_selector_errors(rule, at, parts))
    if rule.route is not None and rule.route not in routes:
        errors.append(
            ConfigError(
                at("route"),
                "alert.unknown-route",
                f"alert {name!r} names route {quoted(rule.route)}, which fleet.yaml "
                f"alerting.routes does not declare; {_near(rule.route, routes, 'routes')}",
            )
        )
    return errors


def _selector_errors(
    rule: AlertRule, at: Callable[..., SourceSpan], parts: Parts
) -> list[ConfigError]:
    sel = rule.selector
    if not parts.agents or (sel.tier is None and sel.shard is None and not sel.labels):
        return []
    if sel.tier is not None and sel.tier not in parts.tier_names:
        return [
            ConfigError(
                at("selector", "tier"),
                "alert.selector",
                f"alert {rule.name!r} selects tier {quoted(sel.tier)}, which has no agents; "
                + _near(sel.tier, parts.tier_names, "tiers"),
            )
        ]
    if sel.shard is not None and sel.shard not in parts.shards:
        return [
            ConfigError(
                at("selector", "shard"),
                "alert.selector",
                f"alert {rule.name!r} selects shard {quoted(sel.shard)}, which has no agents; "
                + _near(sel.shard, parts.shards, "shards"),
            )
        ]
    if parts.salvaged or any(_matches(ea, rule) for ea in parts.agents.values()):
        return []
    what = ", ".join(f"{k}={v}" for k, v in sel.labels.items())
    return [
        ConfigError(
            at("selector"),
            "alert.selector",
            f"alert {rule.name!r}: no agent matches its selector ({clip(what or 'tier/shard')})",
        )
    ]


def _route_errors(parts: Parts) -> tuple[list[ConfigError], set[str]]:
    doc = parts.fleet_doc
    setting = parts.fleet.alerting
    errors: list[ConfigError] = []
    names: set[str] = set()

    def at(*path: str | int) -> SourceSpan:
        return doc.loc.find(("alerting", *path)) if doc else SourceSpan("fleet.yaml", 1, 1)

    for i, route in enumerate(setting.routes):
        if route.name in names:
            errors.append(
                ConfigError(
                    at("routes", i, "name"),
                    "route.duplicate",
                    f"alerting route {route.name!r} is declared twice",
                )
            )
        names.add(route.name)
        if (route.webhook is None) == (route.slack is None):
            errors.append(
                ConfigError(
                    at("routes", i),
                    "route.receiver",
                    f"alerting route {route.name!r} needs exactly one of webhook or slack",
                )
            )
        for kind, recv in (("webhook", route.webhook), ("slack", route.slack)):
            if recv is None or parts.secrets is None or recv.url.secret in parts.secrets:
                continue
            errors.append(
                ConfigError(
                    at("routes", i, kind, "url", "secret"),
                    "secret.undeclared",
                    f"alerting route {route.name!r} uses secret {recv.url.secret!r}, which "
                    "secrets/index.yaml does not declare; "
                    + _near(recv.url.secret, parts.secrets, "secrets"),
                )
            )
    default = setting.default_route
    if default is not None and default not in names:
        errors.append(
            ConfigError(
                at("default_route"),
                "alert.unknown-route",
                f"alerting.default_route {default!r} names no route; "
                + _near(default, names, "routes"),
            )
        )
    return errors, names


def alert_errors(
    parts: Parts, alerts: Mapping[str, AlertsFile], docs: Mapping[str, Doc]
) -> list[ConfigError]:
    """Every broken alerting rule across fleet.yaml and the alerts files that have the
    right shape (`docs`: each file's loaded YAML, for the spans)."""
    errors, routes = _route_errors(parts)
    routes_known = parts.fleet_valid  # a broken fleet.yaml is reported; its routes unknown
    seen: dict[str, SourceSpan] = {}
    for rel in sorted(alerts):
        doc = docs[rel]
        for i, rule in enumerate(alerts[rel].rules):

            def at(*path: str | int, _i: int = i, _doc: Doc = doc) -> SourceSpan:
                return _doc.loc.find(("rules", _i, *path))

            if rule.name in seen:
                errors.append(
                    ConfigError(
                        at("name"),
                        "alert.duplicate-name",
                        f"alert {rule.name!r} is already defined at {seen[rule.name]}",
                    )
                )
            else:
                seen[rule.name] = at("name")
            found = _rule_errors(rule, at, parts, routes)
            if not routes_known:
                found = [e for e in found if e.rule != "alert.unknown-route"]
            errors.extend(found)
    return errors
