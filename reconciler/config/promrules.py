"""The rules of fleet.yaml `prometheus:` and `alertmanager:` (where the alerts are shipped).

Each one's rules_dir (config_path) is a normalised absolute path under one of
connection.allowed_paths (or one of them), as an agent's config_path is; its url names
the box's own host or one connection.allowed_probe_hosts lists, never a link-local or
metadata address; its known_hosts is not read from the repo. Each error points at the
offending line.
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
    """Every broken rule of fleet.yaml `prometheus:` and `alertmanager:` (none when absent)."""
    fleet, doc = parts.fleet, parts.fleet_doc
    if doc is None or not parts.fleet_valid:
        return []
    errors: list[ConfigError] = []
    if fleet.prometheus is not None:
        p = fleet.prometheus
        where = "directory Prometheus reads its rule files from"
        errors += _box_errors(
            parts, "prometheus", "rules_dir", p.rules_dir, p.host, p.url, p.known_hosts, where
        )
    if fleet.alertmanager is not None:
        a = fleet.alertmanager
        where = "path of the file Alertmanager reads"
        errors += _box_errors(
            parts, "alertmanager", "config_path", a.config_path, a.host, a.url, a.known_hosts, where
        )
    return errors


def _box_errors(
    parts: Parts, section: str, field: str, path: str, box_host: str, url: str,
    known: str | None, what_path: str,
) -> list[ConfigError]:  # fmt: skip
    fleet, doc = parts.fleet, parts.fleet_doc
    if doc is None:
        return []

    def at(*path: str) -> SourceSpan:
        return doc.loc.find((section, *path))

    errors: list[ConfigError] = []
    problem = path_problem(path)
    if problem is not None:
        what = "is not absolute" if problem == "relative" else problem
        errors.append(
            ConfigError(
                at(field), f"{section}.path",
                f"{section}.{field} {quoted_path(path)} {what}; give the absolute,"
                f" normalised {what_path}",
            )
        )  # fmt: skip
    else:
        allowed = [normal(p) for p in fleet.connection.allowed_paths if path_problem(p) is None]
        where = normal(path)
        if not any(where == d or under(where, d) for d in allowed):
            errors.append(
                ConfigError(
                    at(field), f"{section}.path-not-allowed",
                    f"{section}.{field} {quoted_path(path)} is under none of"
                    f" connection.allowed_paths ({clip(', '.join(allowed)) or 'none set'});"
                    f" add {quoted_path(path)} to connection.allowed_paths",
                )
            )  # fmt: skip
    host = _http_host(url)
    if host is None:
        errors.append(
            ConfigError(
                at("url"), f"{section}.url",
                f"{section}.url {quoted_path(url)} is not an http(s) URL with a host",
            )
        )  # fmt: skip
    else:
        why = probe_host_refusal(host, box_host, fleet.connection.allowed_probe_hosts)
        if why is not None:
            errors.append(ConfigError(at("url"), f"{section}.url", f"{section}.url: {why}"))
    if known is not None and not known.startswith(("/", "~")):
        errors.append(
            ConfigError(
                at("known_hosts"), "connection.known-hosts-in-repo",
                f"{section}.known_hosts {quoted_path(known)} is relative, so it is read from"
                " the repo, which a pull request can change; give an absolute path outside it",
            )
        )  # fmt: skip
    return errors
