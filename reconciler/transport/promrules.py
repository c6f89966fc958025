"""A Prometheus server's rule API, for shipping alert rules: reload it, read what it loaded.

`reload` posts to `/-/reload` (Prometheus needs --web.enable-lifecycle) and returns
Prometheus's own error text when it refuses the new rule files. `loaded_groups` reads
`/api/v1/rules`: each group's name, its file and the content-hash labels its rules carry.
Errors are `TransportError`s naming the box and the operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.model.fleet import probe_host_forbidden
from reconciler.transport.base import TransportError

MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class LoadedGroup:
    """One rule group as Prometheus reports it."""

    name: str
    file: str
    hashes: frozenset[str]  # the values of the hash label on its rules


def _check(box: str, operation: str, url: str) -> None:
    host = httpx.URL(url).host
    why = probe_host_forbidden(host) if host else f"{url} names no host"
    if why is not None:
        raise TransportError(box, operation, f"{url}: {why}; never contacted")


async def reload(
    box: str, base_url: str, *, timeout: float, server: str = "prometheus"
) -> str | None:
    """POST <base_url>/-/reload: None when the server (Prometheus or Alertmanager) took its
    new files, else its own error text."""
    url = base_url.rstrip("/") + "/-/reload"
    operation = f"{server} reload"
    _check(box, operation, url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            answer = await client.post(url)
    except httpx.HTTPError as exc:
        raise TransportError(box, operation, f"POST {url}: {exc}") from None
    if answer.status_code in {403, 405}:
        raise TransportError(
            box, operation,
            f"POST {url} answered {answer.status_code}: start Prometheus with "
            "--web.enable-lifecycle, or set prometheus.reload_command in fleet.yaml",
        )  # fmt: skip
    if answer.is_success:
        return None
    text = answer.text.strip() or f"HTTP {answer.status_code}"
    return text[:MAX_ERROR_CHARS]


async def loaded_groups(
    box: str, base_url: str, *, hash_label: str, timeout: float
) -> dict[str, LoadedGroup]:
    """Every rule group Prometheus has loaded, by name (GET <base_url>/api/v1/rules)."""
    url = base_url.rstrip("/") + "/api/v1/rules"
    _check(box, "prometheus rules", url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            answer = await client.get(url)
        answer.raise_for_status()
        doc = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise TransportError(box, "prometheus rules", f"GET {url}: {exc}") from None
    return parse_groups(doc, hash_label)


def parse_groups(doc: Any, hash_label: str) -> dict[str, LoadedGroup]:
    """The groups of an /api/v1/rules answer (an unexpected shape reads as no groups)."""
    data = doc.get("data") if isinstance(doc, Mapping) else None
    groups = data.get("groups") if isinstance(data, Mapping) else None
    out: dict[str, LoadedGroup] = {}
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
            continue
        hashes: set[str] = set()
        rules = group.get("rules")
        for rule in rules if isinstance(rules, list) else []:
            labels = rule.get("labels") if isinstance(rule, Mapping) else None
            value = labels.get(hash_label) if isinstance(labels, Mapping) else None
            if isinstance(value, str):
                hashes.add(value)
        file = group.get("file")
        out[group["name"]] = LoadedGroup(
            group["name"], file if isinstance(file, str) else "", frozenset(hashes)
        )
    return out


async def alertmanager_has(box: str, base_url: str, marker: str, *, timeout: float) -> bool:
    """Whether Alertmanager's loaded configuration names `marker` (GET <base_url>/api/v2/status,
    config.original). That text holds the resolved secret URLs: it is searched, never kept,
    shown or put in an error."""
    url = base_url.rstrip("/") + "/api/v2/status"
    _check(box, "alertmanager status", url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            answer = await client.get(url)
        answer.raise_for_status()
        doc = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise TransportError(box, "alertmanager status", f"GET {url}: {exc}") from None
    config = doc.get("config") if isinstance(doc, Mapping) else None
    original = config.get("original") if isinstance(config, Mapping) else None
    return isinstance(original, str) and marker in original


@dataclass(frozen=True, slots=True)
class LoadedAlert:
    """One alerting rule Prometheus has loaded: its PromQL as Prometheus prints it (which
    may differ in form from ours, e.g. [7d] as [1w]) and its group's content hash."""

    query: str
    group: str
    group_hash: str | None


async def loaded_alerts(
    box: str, base_url: str, prefix: str, *, hash_label: str, timeout: float
) -> dict[str, LoadedAlert]:
    """The alerting rules of the groups named `prefix...` (this fleet's) that Prometheus has
    loaded, by alert name (GET <base_url>/api/v1/rules)."""
    url = base_url.rstrip("/") + "/api/v1/rules"
    _check(box, "prometheus rules", url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            answer = await client.get(url)
        answer.raise_for_status()
        doc = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise TransportError(box, "prometheus rules", f"GET {url}: {exc}") from None
    return parse_alerts(doc, prefix, hash_label)


def parse_alerts(doc: Any, prefix: str, hash_label: str) -> dict[str, LoadedAlert]:
    """The alerting rules in the groups named `prefix...` of an /api/v1/rules answer."""
    data = doc.get("data") if isinstance(doc, Mapping) else None
    groups = data.get("groups") if isinstance(data, Mapping) else None
    out: dict[str, LoadedAlert] = {}
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, Mapping) or not str(group.get("name", "")).startswith(prefix):
            continue
        rules = [r for r in group.get("rules") or [] if isinstance(r, Mapping)]
        # the hash label is on the group's info recording rule (alerts/compile.py)
        hashes = {
            r["labels"][hash_label] for r in rules
            if isinstance(r.get("labels"), Mapping)
            and isinstance(r["labels"].get(hash_label), str)
        }  # fmt: skip
        digest = hashes.pop() if len(hashes) == 1 else None
        for rule in rules:
            name, query = rule.get("name"), rule.get("query")
            if rule.get("type") == "alerting" and isinstance(name, str) and isinstance(query, str):
                out[name] = LoadedAlert(query, str(group["name"]), digest)
    return out
