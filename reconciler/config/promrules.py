"""The rules of fleet.yaml `prometheus:` (the box the alert rules are shipped to).

Its rules_dir is a normalised absolute path under one of connection.allowed_paths (or
one of them), as an agent's config_path is; its url names the box's own host or one
connection.allowed_probe_hosts lists, never a link-local or metadata address; its
known_hosts is not read from the repo. Each error points at the offending line.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from reconciler.config.boundary import normal, path_problem, under
from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.repo import Parts
from reconciler.config.secretscan import clip, quoted_path
from reconciler.model.fleet import probe_host_refusal


def _http_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts.hostname if parts.scheme in ("http", "https") else None


def prometheus_errors(parts: Parts) -> list[ConfigError]:
    """Every broken rule of fleet.yaml `prometheus:` (none when it is absent)."""
    fleet, doc = parts.fleet, parts.fleet_doc
    box = fleet.prometheus
    if box is None or doc is None or not parts.fleet_valid:
        return []

    def at(*path: str) -> SourceSpan:
        return doc.loc.find(("prometheus", *path))

    errors: list[ConfigError] = []
    problem = path_problem(box.rules_dir)
    if problem is not None:
        what = "is not absolute" if problem == "relative" else problem
        errors.append(
            ConfigError(
                at("rules_dir"), "prometheus.path",
                f"prometheus.rules_dir {quoted_path(box.rules_dir)} {what}; give the absolute,"
                " normalised directory Prometheus reads its rule files from",
            )
        )  # fmt: skip
    else:
        allowed = [normal(p) for p in fleet.connection.allowed_paths if path_problem(p) is None]
        rules_dir = normal(box.rules_dir)
        if not any(rules_dir == d or under(rules_dir, d) for d in allowed):
            errors.append(
                ConfigError(
                    at("rules_dir"), "prometheus.path-not-allowed",
                    f"prometheus.rules_dir {quoted_path(box.rules_dir)} is under none of"
                    f" connection.allowed_paths ({clip(', '.join(allowed)) or 'none set'});"
                    f" add {quoted_path(box.rules_dir)} to connection.allowed_paths",
                )
            )  # fmt: skip
    host = _http_host(box.url)
    if host is None:
        errors.append(
            ConfigError(
                at("url"), "prometheus.url",
                f"prometheus.url {quoted_path(box.url)} is not an http(s) URL with a host",
            )
        )  # fmt: skip
    else:
        why = probe_host_refusal(host, box.host, fleet.connection.allowed_probe_hosts)
        if why is not None:
            errors.append(ConfigError(at("url"), "prometheus.url", f"prometheus.url: {why}"))
    known = box.known_hosts
    if known is not None and not known.startswith(("/", "~")):
        errors.append(
            ConfigError(
                at("known_hosts"), "connection.known-hosts-in-repo",
                f"prometheus.known_hosts {quoted_path(known)} is relative, so it is read from"
                " the repo, which a pull request can change; give an absolute path outside it",
            )
        )  # fmt: skip
    return errors
