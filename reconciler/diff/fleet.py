"""The fleet diff: desired (a repo) against current (another repo, or the live boxes).

Two entry points, one result type:

- `diff_repos(base, head)`: pull-request mode. Both sides are loaded repos;
  an agent only in head is added, only in base removed; reconciler's own
  fields are diffed too: [access] ones (diff/access.py: host, config_path,
  commands, ...; a config_path or secrets_path change is a rollout to the new
  path) apart from plain settings that roll nothing out. The review rules
  that judge the diff are the base's.
- `diff_live(repo, boxes)`: live mode. The current side is what each box
  really runs (model/live.py): its config file's bytes, parsed; its stamp
  (drift = the file differs from the stamp); its state (an unmanaged box is
  added, adopted by the first apply; a box stamped for this fleet whose agent
  left the repo is removed; foreign and unreachable boxes are listed, never
  skipped).

Pure: no I/O, no clock. Output is sorted by agent name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.config.errors import ConfigError
from reconciler.config.load import load_yaml
from reconciler.config.repo import FLEET_FILE, PAYLOAD_SCHEMA_FILE, EffectiveAgent, Repo
from reconciler.diff.access import COST_MARKER, is_fleet_access
from reconciler.diff.agent import move_changes, payload_changes, settings_changes
from reconciler.diff.alerts import diff_alerts, diff_alerts_live
from reconciler.diff.cost import Traffic, estimate, fleet_total
from reconciler.diff.model import (
    AgentDiff,
    AgentStatus,
    ChangeKind,
    FieldChange,
    FleetDiff,
    SecretFileChange,
    SecretsChange,
)
from reconciler.diff.values import ValueChange, canonical, diff_values
from reconciler.model.agent import Agent
from reconciler.model.live import BoxState, LiveBox, SecretsCheck
from reconciler.render.canonical import render_payload, sha256_hex

_Cache = dict[tuple[str, str], list[ValueChange]]


def _secrets(
    name: str, old: Mapping[str, str] | None, new: Mapping[str, str] | None
) -> SecretsChange | None:
    """A secrets-file change by fingerprint, when both sides are known and differ."""
    if old is None or new is None or name not in new:
        return None
    was, now = old.get(name), new[name]
    if was is None:
        return SecretsChange(check=SecretsCheck.MISSING, new=now)
    if was == now:
        return None
    return SecretsChange(check=SecretsCheck.CHANGED, old=was, new=now)


def _payload(
    old: dict[str, Any],
    new: dict[str, Any],
    repo: Repo,
    cache: _Cache,
    head: EffectiveAgent | None = None,
    base: EffectiveAgent | None = None,
    base_repo: Repo | None = None,
) -> tuple[FieldChange, ...]:
    key = (canonical(old), canonical(new))
    if key[0] == key[1]:
        return ()
    return payload_changes(
        old,
        new,
        repo.payload_schema,
        head=head,
        base=base,
        cache=cache,
        key=key,
        base_schema=base_repo.payload_schema if base_repo is not None else None,
    )


def _fleet_changes(base: Repo, head: Repo) -> tuple[FieldChange, ...]:
    """fleet.yaml's changes, [access] ones flagged, and the payload schema's cost markers."""
    old = base.fleet.model_dump(mode="json", by_alias=True)
    new = head.fleet.model_dump(mode="json", by_alias=True)
    out = [
        FieldChange(
            path=c.path,
            kind=c.kind,
            old=c.old,
            new=c.new,
            source=FLEET_FILE,
            old_source=FLEET_FILE,
            access=is_fleet_access(c.path),
        )
        for c in diff_values(old, new)
    ]
    was, now = (sorted(".".join(p) for p in r.payload_schema.cost_impacting) for r in (base, head))
    if was != now:  # who must review a change is decided by these markers too
        out.append(
            FieldChange(
                path=(COST_MARKER,),
                kind=ChangeKind.CHANGED,
                old=list(was),
                new=list(now),
                source=PAYLOAD_SCHEMA_FILE,
                old_source=PAYLOAD_SCHEMA_FILE,
                access=True,
            )
        )
    return tuple(out)


def diff_repos(
    base: Repo,
    head: Repo,
    *,
    base_label: str = "base",
    head_label: str = "head",
    cost_per_day: Mapping[str, float] | None = None,
    base_secrets: Mapping[str, str] | None = None,
    head_secrets: Mapping[str, str] | None = None,
    traffic: Mapping[str, Traffic] | None = None,
    secret_files: tuple[SecretFileChange, ...] = (),
    recipients: tuple[FieldChange, ...] = (),
) -> FleetDiff:
    """Pull-request mode: what merging `head` over `base` changes, agent by agent.

    Args:
        cost_per_day: today's USD/day per agent (`--costs`), when nothing better is known.
        traffic: each agent's traffic (Prometheus or usage.yaml), priced by the head's
            price table (a change adding a model adds its price in the same change).
        base_secrets, head_secrets: each agent's secrets-file fingerprint on each side
            (from the fleet key and values), when the caller has them; never values.
        secret_files, recipients: the encrypted secret files that differ, and the
            recipients list when it does (diff/secretfiles.py); [access] for the latter.
    """
    flows = _traffic(cost_per_day, traffic)
    prices = head.fleet.prices
    cache: _Cache = {}
    agents: list[AgentDiff] = []
    unchanged = 0
    for name in sorted(base.agents.keys() | head.agents.keys()):
        was, now = base.agents.get(name), head.agents.get(name)
        if was is None and now is not None:
            changes = _payload({}, now.agent.config, head, cache, head=now, base_repo=base)
            status = AgentStatus.ADDED
            settings: tuple[FieldChange, ...] = ()
        elif now is None and was is not None:
            changes = _payload(was.agent.config, {}, base, cache, base=was)
            status = AgentStatus.REMOVED
            settings = ()
        elif was is not None and now is not None:
            changes = _payload(was.agent.config, now.agent.config, head, cache, now, was, base)
            status = AgentStatus.CHANGED if changes else AgentStatus.UNCHANGED
            settings = settings_changes(was, now)
        else:  # pragma: no cover - the name came from one of the two sides
            continue
        ref = now or was
        assert ref is not None  # noqa: S101 (narrowing for mypy)
        diff = AgentDiff(
            agent=name,
            status=status,
            tier=ref.agent.tier,
            shard=ref.agent.shard,
            changes=changes,
            settings=tuple(c for c in settings if not c.access),
            access=tuple(c for c in settings if c.access),
            secrets=_secrets(name, base_secrets, head_secrets),
            cost=estimate(
                status,
                changes,
                flows.get(name),
                prices,
                old_model=was.agent.config.get("model") if was is not None else None,
                new_model=now.agent.config.get("model") if now is not None else None,
            ),
        )
        if diff.changed:
            agents.append(diff)
        else:
            unchanged += 1
    fleet = _fleet_changes(base, head)
    # The review rules are the base's: a pull request cannot weaken the check it is judged
    # by (a change of the rules themselves is listed as [access]).
    rules = base.fleet.review
    return FleetDiff(
        mode="pr",
        fleet_id=head.fleet.fleet_id,
        base=base_label,
        head=head_label,
        approvers=tuple(rules.cost_impacting_approvers),
        access_approvers=tuple(rules.access_approvers),
        rules_from=base_label,
        agents=tuple(agents),
        unchanged=unchanged,
        fleet_settings=tuple(c for c in fleet if not c.access),
        fleet_access=tuple(c for c in fleet if c.access) + recipients,
        cost=fleet_total([a.cost for a in agents]),
        alerts=diff_alerts(base, head),
        secret_files=secret_files,
    )


def _traffic(
    cost_per_day: Mapping[str, float] | None, traffic: Mapping[str, Traffic] | None
) -> dict[str, Traffic]:
    """Each agent's traffic; a USD/day the caller gave (`--costs`) wins, being explicit."""
    out = dict(traffic or {})
    for agent, usd in (cost_per_day or {}).items():
        out[agent] = Traffic(source="--costs file", usd_per_day=usd)
    return out


def parse_config(agent: str, data: bytes) -> dict[str, Any] | str:
    """A box's config file parsed to a payload, or why it cannot be (a message)."""
    try:
        value = load_yaml(f"{agent}: config file on the box", data).value
    except ConfigError as exc:
        return f"the config file on the box is not valid YAML: {exc}"
    if value is None:
        return {}
    if not isinstance(value, dict):
        return f"the config file on the box holds a {type(value).__name__}, not a map"
    return value


def _live_one(
    ea: EffectiveAgent,
    box: LiveBox | None,
    repo: Repo,
    cache: _Cache,
    cost: Traffic | None,
    secrets: Mapping[str, str] | None,
    moved_from: Agent | None = None,
) -> AgentDiff:
    """One agent of the repo against its box (read at its old path when `moved_from`)."""
    desired = ea.agent.config
    common: dict[str, Any] = {"agent": ea.name, "tier": ea.agent.tier, "shard": ea.agent.shard}
    if box is None:
        return AgentDiff(status=AgentStatus.UNKNOWN, reason="the box was not read", **common)
    if box.state in (BoxState.UNKNOWN, BoxState.FOREIGN):
        status = AgentStatus.UNKNOWN if box.state is BoxState.UNKNOWN else AgentStatus.FOREIGN
        return AgentDiff(status=status, reason=box.reason, **common)
    reason: str | None = None
    if box.config_bytes is None:
        current: dict[str, Any] = {}
        reason = "no config file on the box"
    else:
        parsed = parse_config(ea.name, box.config_bytes)
        current, reason = ({}, parsed) if isinstance(parsed, str) else (parsed, None)
    changes = _payload(current, desired, repo, cache, head=ea)
    want_sha = sha256_hex(render_payload(desired))
    if box.state is BoxState.UNMANAGED:
        status = AgentStatus.ADDED
        reason = reason or "unmanaged box (no stamp): the first apply adopts it"
    elif box.drifted:
        status = AgentStatus.DRIFTED
        reason = reason or "the file on the box differs from its stamp: edited by hand"
    else:
        status = AgentStatus.CHANGED if changes else AgentStatus.UNCHANGED
    on_box = {ea.name: box.secrets_fingerprint} if box.secrets_fingerprint else None
    return AgentDiff(
        status=status,
        reason=reason,
        access=() if moved_from is None else move_changes(ea, moved_from),
        format_only=not changes and box.config_sha256 not in (None, want_sha),
        changes=changes,
        secrets=_secrets(ea.name, on_box, secrets),
        # Adopting a box changes its cost only by the fields that change.
        cost=estimate(
            AgentStatus.CHANGED,
            changes,
            cost,
            repo.fleet.prices,
            old_model=current.get("model"),
            new_model=desired.get("model"),
        ),
        **common,
    )


def _orphan(box: LiveBox, repo: Repo, cache: _Cache, cost: Traffic | None) -> AgentDiff:
    """A box whose agent is not in the repo."""
    if box.state in (BoxState.UNKNOWN, BoxState.FOREIGN):
        status = AgentStatus.UNKNOWN if box.state is BoxState.UNKNOWN else AgentStatus.FOREIGN
        return AgentDiff(agent=box.agent, status=status, reason=box.reason)
    if box.state is BoxState.UNMANAGED:
        why = "a box without a stamp whose agent is not in the repo: not ours to change"
        return AgentDiff(agent=box.agent, status=AgentStatus.UNKNOWN, reason=why)
    current: dict[str, Any] = {}
    if box.config_bytes is not None:
        parsed = parse_config(box.agent, box.config_bytes)
        current = parsed if isinstance(parsed, dict) else {}
    changes = _payload(current, {}, repo, cache)
    return AgentDiff(
        agent=box.agent,
        status=AgentStatus.REMOVED,
        reason="stamped for this fleet, but the agent is no longer in the repo (orphan)",
        changes=changes,
        cost=estimate(
            AgentStatus.REMOVED, changes, cost, repo.fleet.prices, old_model=current.get("model")
        ),
    )


def diff_live(
    repo: Repo,
    boxes: Iterable[LiveBox],
    *,
    head_label: str = "work tree",
    cost_per_day: Mapping[str, float] | None = None,
    desired_secrets: Mapping[str, str] | None = None,
    traffic: Mapping[str, Traffic] | None = None,
    live_alerts: Mapping[str, str] | None = None,
    moves: Mapping[str, Agent] | None = None,
) -> FleetDiff:
    """Live mode: what applying `repo` would change on the boxes as they run now.

    Args:
        boxes: one LiveBox per box read (agents of the repo without one are unknown).
        desired_secrets: each agent's wanted secrets-file fingerprint, when the fleet
            key and values are at hand; without them secrets are not compared.
        traffic: each box's measured traffic (its metrics over a window), for cost figures.
        live_alerts: the alert rules a Prometheus has loaded (name -> PromQL), when the
            caller read them; without them alerts are not compared.
        moves: agents whose box was found at an old config path (the agent as it was
            there; its LiveBox in `boxes` is the one read at that path): a move, shown as
            [access] old path -> new path, never as a new box.
    """
    costs = _traffic(cost_per_day, traffic)
    by_agent = {box.agent: box for box in boxes}
    cache: _Cache = {}
    agents: list[AgentDiff] = []
    unchanged = 0
    for name in sorted(repo.agents.keys() | by_agent.keys()):
        ea, box = repo.agents.get(name), by_agent.get(name)
        if ea is None:
            assert box is not None  # noqa: S101 (the name came from the boxes)
            diff = _orphan(box, repo, cache, costs.get(name))
        else:
            was = (moves or {}).get(name)
            diff = _live_one(ea, box, repo, cache, costs.get(name), desired_secrets, was)
        if diff.changed or diff.status is not AgentStatus.UNCHANGED:
            agents.append(diff)
        else:
            unchanged += 1
    return FleetDiff(
        mode="live",
        fleet_id=repo.fleet.fleet_id,
        base="live",
        head=head_label,
        approvers=tuple(repo.fleet.review.cost_impacting_approvers),
        access_approvers=tuple(repo.fleet.review.access_approvers),
        rules_from=head_label,
        agents=tuple(agents),
        unchanged=unchanged,
        cost=fleet_total([a.cost for a in agents]),
        alerts=() if live_alerts is None else diff_alerts_live(repo, live_alerts),
    )
