"""One agent's field changes: normalised value changes, annotated for people.

Each payload change gets where its new value was set (the winning layer of
the path or of its nearest ancestor, as `explain` reports it), and its flags
from the repo's payload schema (x-cost-impacting, x-restart-required). A
change involving a `{secret: NAME}` reference is flagged secret; if its other
side is a plain value (a secret about to be pasted into config, or moved out
of it), that value is redacted here, before any report can see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.config.layer import FieldPath, Setting
from reconciler.config.payload import PayloadSchema
from reconciler.config.provenance import short
from reconciler.config.repo import EffectiveAgent
from reconciler.config.secretscan import secret_field
from reconciler.diff.access import is_agent_access
from reconciler.diff.model import REDACTED, ChangeKind, FieldChange
from reconciler.diff.values import ValueChange, diff_values, has_secret_ref, is_secret_ref
from reconciler.model.agent import Agent

# reconciler's own fields compared between two repos; `name` is the identity, `config`
# is the payload (diffed on its own).
_NOT_SETTINGS = frozenset({"name", "config"})


def _setting_text(setting: Setting) -> str:
    return ("removed at " if setting.deleted else "") + short(setting)


def source_of(ea: EffectiveAgent | None, path: FieldPath) -> str | None:
    """file:line of the layer that decided `path` (or its nearest ancestor) for an agent."""
    if ea is None:
        return None
    for depth in range(len(path), 0, -1):
        chain = ea.provenance.get(path[:depth])
        if chain:
            return _setting_text(chain[-1])
    return None


def entry_of(ea: EffectiveAgent) -> str:
    """file:line of an agent's entry in its shard file."""
    return f"{ea.entry.file}:{ea.entry.line}"


def _redacted(change: ValueChange) -> tuple[Any, Any, bool]:
    """(old, new, secret) with a plain value facing a secret reference replaced; a field
    named like a credential (`password`, `api_key`, `kb.token`) never shows its values."""
    if secret_field(change.path):

        def hide(value: Any) -> Any:  # a reference names a secret: shown; a value: never
            return value if value is None or has_secret_ref(value) else REDACTED

        return hide(change.old), hide(change.new), True
    if not (has_secret_ref(change.old) or has_secret_ref(change.new)):
        return change.old, change.new, False
    old, new = change.old, change.new
    if is_secret_ref(old) and new is not None and not has_secret_ref(new):
        new = REDACTED
    if is_secret_ref(new) and old is not None and not has_secret_ref(old):
        old = REDACTED
    return old, new, True


def payload_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    schema: PayloadSchema,
    *,
    head: EffectiveAgent | None = None,
    base: EffectiveAgent | None = None,
    cache: dict[tuple[str, str], list[ValueChange]] | None = None,
    key: tuple[str, str] | None = None,
    base_schema: PayloadSchema | None = None,
) -> tuple[FieldChange, ...]:
    """The payload changes from `old` to `new`, annotated with provenance and schema flags.

    `cache`/`key` (the two payloads' canonical texts) share the diffing among the
    many agents that make the same change. `base_schema`: the base revision's schema
    (pull-request mode); a path either schema marks x-cost-impacting is cost-impacting,
    so a change cannot drop the marker that would have it reviewed.
    """
    if cache is not None and key is not None:
        raw = cache.get(key)
        if raw is None:
            raw = cache[key] = diff_values(old, new)
    else:
        raw = diff_values(old, new)
    out: list[FieldChange] = []
    for change in raw:
        shown_old, shown_new, secret = _redacted(change)
        full = ("config", *change.path)
        out.append(
            FieldChange(
                path=change.path,
                kind=change.kind,
                old=shown_old,
                new=shown_new,
                source=source_of(head, full),
                old_source=source_of(base, full),
                cost_impacting=schema.is_cost_impacting(change.path)
                or (base_schema is not None and base_schema.is_cost_impacting(change.path)),
                restart_required=schema.is_restart_required(change.path),
                secret=secret,
            )
        )
    return tuple(out)


def settings_of(ea: EffectiveAgent) -> dict[str, Any]:
    """reconciler's own fields of an agent, as JSON values; unset ones left out (so setting
    one is `added`, not a type change from null)."""
    dumped = ea.agent.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in dumped.items() if k not in _NOT_SETTINGS}


def settings_changes(base: EffectiveAgent, head: EffectiveAgent) -> tuple[FieldChange, ...]:
    """Changes of reconciler's own fields, [access] ones flagged (host, config_path, ...).

    Only an access change of config_path or secrets_path rolls anything out (to the new path).
    """
    out: list[FieldChange] = []
    for change in diff_values(settings_of(base), settings_of(head)):
        out.append(
            FieldChange(
                path=change.path,
                kind=ChangeKind(change.kind),
                old=change.old,
                new=change.new,
                source=source_of(head, change.path) or entry_of(head),
                old_source=source_of(base, change.path) or entry_of(base),
                access=is_agent_access(change.path),
            )
        )
    return tuple(out)


def move_changes(head: EffectiveAgent, moved_from: Agent) -> tuple[FieldChange, ...]:
    """Live mode: the box still runs at the old config (and secrets) path of `moved_from`;
    the repo wants `head`'s. [access], and a rollout to the new path (never "added")."""
    out = []
    for field in ("config_path", "secrets_path"):
        old, new = getattr(moved_from, field), getattr(head.agent, field)
        if old != new:
            out.append(
                FieldChange(
                    path=(field,),
                    kind=ChangeKind.CHANGED,
                    old=old,
                    new=new,
                    source=source_of(head, (field,)) or entry_of(head),
                    old_source="on the box",
                    access=True,
                )
            )
    return tuple(out)
