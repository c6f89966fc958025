"""The fleet's boundary: what a pull request may make reconciler touch, and what it may not.

A config repo is input from anyone who can open a pull request, so these rules keep
it from reaching beyond the fleet:

- box paths (`config_path`, `secrets_path`) are normalised, printable absolute POSIX
  paths (`agent.unsafe-path`; a relative one is `agent.relative-path`) and lie under
  one of fleet.yaml's `connection.allowed_paths` (`agent.path-not-allowed`), which has
  no default (`connection.allowed-paths`);
- `known_hosts` never lies in the repo itself (`connection.known-hosts-in-repo`): a
  relative path is resolved against the repo, and an absolute one under the repo's
  root (when the snapshot knows it) is refused;
- no config value holds a credential (`secret.plaintext`), and no payload string is
  random enough to be one (`secret.entropy`) unless its field is `x-not-secret`.

Every check is pure: paths are compared as strings, never resolved on this machine.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any, Final

from reconciler.config.errors import ConfigError, SourceSpan
from reconciler.config.layer import winner
from reconciler.config.load import Doc, Loc
from reconciler.config.payload import PayloadSchema
from reconciler.config.repo import EffectiveAgent, Parts
from reconciler.config.secretscan import (
    ENTROPY_MIN_BITS,
    ENTROPY_MIN_CHARS,
    clip,
    credential_kind,
    high_entropy,
    quoted_path,
    shown_key,
)

MAX_PATH_CHARS: Final = 4096
_PATH_FIELDS: Final = ("config_path", "secrets_path")


def path_problem(value: str) -> str | None:
    """Why `value` is not a normalised, printable absolute POSIX path; None when it is.

    "relative" for a path that does not start with "/" (rule agent.relative-path).
    """
    if not value.isprintable():
        return "holds a NUL, control, bidi or other unprintable character"
    if len(value) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if not value.startswith("/"):
        return "relative"
    parts = value.split("/")[1:]
    if "" in parts:
        return "has an empty segment ('//', or a trailing '/')"
    if "." in parts or ".." in parts:
        return "has a '.' or '..' segment"
    return None


def normal(path: str) -> str:
    """`path` normalised as POSIX does (`/a/./b/../c` -> `/a/c`), for comparing paths."""
    out = posixpath.normpath(path)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def under(path: str, directory: str) -> bool:
    """Whether normalised `path` lies strictly below normalised `directory`."""
    return path.startswith(directory.rstrip("/") + "/")


def _span(ea: EffectiveAgent, field: str) -> SourceSpan:
    w = winner(ea.provenance, (field,))
    return w.span if w is not None and w.span is not None else ea.entry


class _Grouped:
    """Errors that many agents share (one line set it for all): one error, agents counted."""

    def __init__(self) -> None:
        self.found: dict[tuple[SourceSpan, str, str], list[str]] = {}

    def add(self, span: SourceSpan, rule: str, message: str, agent: str) -> None:
        self.found.setdefault((span, rule, message), []).append(agent)

    def errors(self) -> list[ConfigError]:
        out = []
        for (span, rule, message), names in self.found.items():
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            out.append(ConfigError(span, rule, f"{message} (agent {names[0]}{more})"))
        return out


def _allowed(parts: Parts, agents_dirs: list[str]) -> tuple[list[str], list[ConfigError]]:
    """The valid allowed_paths entries (normalised) and the errors of the others."""
    doc = parts.fleet_doc
    assert doc is not None  # noqa: S101 (only called with a valid fleet.yaml)
    entries = parts.fleet.connection.allowed_paths
    errors: list[ConfigError] = []
    if not entries:
        wanted = ", ".join(agents_dirs[:5]) + (", ..." if len(agents_dirs) > 5 else "")
        errors.append(
            ConfigError(
                doc.loc.find(("connection", "allowed_paths")),
                "connection.allowed-paths",
                "connection.allowed_paths is not set: it has no default. List the directories"
                " on the boxes that agents' config and secrets files may live under, in"
                f" fleet.yaml: connection: allowed_paths: [{wanted}]",
            )
        )
        return [], errors
    ok: list[str] = []
    for i, entry in enumerate(entries):
        problem = path_problem(entry)
        if entry == "/":
            problem = "is the root: name the directories agents' files live in"
        elif problem == "relative":
            problem = "is not an absolute path"
        if problem is not None:
            errors.append(
                ConfigError(
                    doc.loc.find(("connection", "allowed_paths", i)),
                    "connection.allowed-paths",
                    f"connection.allowed_paths[{i}] {quoted_path(entry)} {problem}",
                )
            )
        else:
            ok.append(entry)
    return ok, errors


def path_errors(parts: Parts, fleet_valid: bool) -> list[ConfigError]:
    """Box paths: normalised and printable, under connection.allowed_paths."""
    grouped = _Grouped()
    good: list[tuple[EffectiveAgent, str, str]] = []
    for ea in parts.agents.values():
        if ea.name in parts.unsure_targets:
            continue  # its paths may be stand-ins for a value removed for a shape error
        for field in _PATH_FIELDS:
            value = getattr(ea.agent, field)
            if value is None:
                continue
            problem = path_problem(value)
            if problem is None:
                good.append((ea, field, value))
            elif problem == "relative":
                grouped.add(
                    _span(ea, field),
                    "agent.relative-path",
                    f"{field} {quoted_path(value)} must be an absolute path on the box",
                    repr(ea.name),
                )
            else:
                grouped.add(
                    _span(ea, field),
                    "agent.unsafe-path",
                    f"{field} {quoted_path(value)} {problem}; write a normalised absolute path",
                    repr(ea.name),
                )
    errors = grouped.errors()
    if not fleet_valid or parts.fleet_doc is None or not parts.agents:
        return errors  # a broken fleet.yaml is reported; its stand-in allows nothing
    dirs = sorted({posixpath.dirname(v) for _, f, v in good if f == "config_path"})
    allowed, bad = _allowed(parts, dirs)
    errors.extend(bad)
    if not allowed:
        return errors
    grouped = _Grouped()
    for ea, field, value in good:
        if not any(under(value, d) for d in allowed):
            grouped.add(
                _span(ea, field),
                "agent.path-not-allowed",
                f"{field} {quoted_path(value)} is under none of connection.allowed_paths"
                f" ({clip(', '.join(allowed))}); move it, or add its directory"
                f" {quoted_path(posixpath.dirname(value))} to connection.allowed_paths in"
                " fleet.yaml",
                repr(ea.name),
            )
    return errors + grouped.errors()


def known_hosts_errors(parts: Parts, root: str | None) -> list[ConfigError]:
    """known_hosts must not lie in the repo, where a pull request could change it."""
    grouped = _Grouped()
    top = normal(root) if root else None
    for ea in parts.agents.values():
        value = ea.agent.known_hosts
        if value is None:
            continue
        relative = not value.startswith(("/", "~"))
        inside = top is not None and value.startswith("/") and under(normal(value), top)
        if relative or inside:
            how = "is relative, so it is read from the repo" if relative else "is in the repo"
            grouped.add(
                _span(ea, "known_hosts"),
                "connection.known-hosts-in-repo",
                f"known_hosts {quoted_path(value)} {how}, which a pull request can change; set"
                " known_hosts to an absolute path outside the config repo",
                repr(ea.name),
            )
    return grouped.errors()


def _walk(value: Any, loc: Loc | None, path: tuple[str | int, ...]) -> Iterator[
    tuple[tuple[str | int, ...], str, SourceSpan | None]
]:  # fmt: skip
    """Every string (key or value) of a loaded document, with its path and span."""
    if isinstance(value, str):
        yield path, value, loc.span if loc else None
    elif isinstance(value, dict):
        for key, sub in value.items():
            kid = loc.kids.get(key) if loc and loc.kids else None
            yield (*path, key), key, kid.span if kid else None
            yield from _walk(sub, kid, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            kid = loc.kids.get(i) if loc and loc.kids else None
            yield from _walk(sub, kid, (*path, i))


def _payload_root(rel: str, path: tuple[str | int, ...]) -> int | None:
    """How many parts of `path` lead to a payload (`config:`) in a layer file; None: none."""
    if rel.startswith("agents/") and path[:1] == ("config",):
        return 1
    if rel.startswith("shards/"):
        if path[:2] == ("defaults", "config"):
            return 2
        if len(path) >= 3 and path[0] == "agents" and path[2] == "config":
            return 3
    return None


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{shown_key(p)}" if out else shown_key(p))
    return clip(out, 120) or "the file"


def secret_errors(
    docs: tuple[tuple[str, Doc], ...], schema: PayloadSchema | None
) -> list[ConfigError]:
    """Credentials in any config value; random-looking strings in payloads."""
    errors: list[ConfigError] = []
    for rel, doc in docs:
        fallback = doc.loc.span
        for path, text, span in _walk(doc.value, doc.loc, ()):
            kind = credential_kind(text)
            where = span or fallback
            if kind is not None:
                errors.append(
                    ConfigError(
                        where,
                        "secret.plaintext",
                        f"{_dotted(path)}: this looks like {kind}; a credential never goes in"
                        " the repo: put its value in the secret store and write"
                        " {secret: NAME} (declared in secrets/index.yaml)",
                    )
                )
                continue
            cut = _payload_root(rel, path)
            if cut is None or schema is None or not high_entropy(text):
                continue
            field = tuple(str(p) for p in path[cut:] if isinstance(p, str))
            if schema.is_not_secret(field):
                continue
            errors.append(
                ConfigError(
                    where,
                    "secret.entropy",
                    f"{_dotted(path)}: a string of {len(text)} characters at"
                    f" {ENTROPY_MIN_BITS}+ bits/char looks like a credential (>="
                    f" {ENTROPY_MIN_CHARS} chars): write {{secret: NAME}} instead, or annotate"
                    f" config.{'.'.join(map(shown_key, field))} with x-not-secret: true in the"
                    " payload schema",
                )
            )
    return errors


def boundary_errors(parts: Parts) -> list[ConfigError]:
    """Every boundary rule broken (see the module docstring)."""
    return [
        *path_errors(parts, parts.fleet_valid),
        *known_hosts_errors(parts, parts.root),
        *secret_errors(parts.docs, parts.payload_schema),
    ]
