"""Preflight: the repo's desired bytes against the boxes' live state -> the plan's input (pure).

`desired_of` renders every agent once (the exact bytes that will be written,
their sha, the secret names they reference). `survey` compares them with the
live boxes and sorts every agent into: changing (a plan `Change`), unchanged,
unreachable (could not be read: host key, refused, timed out), foreign
(stamped for another fleet or agent: refused), blocked (its stamp says the
target revision was rolled back automatically). Nothing here does I/O; the
driver and the CLI read the boxes (transport/live.py) and hand the result in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.repo import EffectiveAgent, Repo
from reconciler.diff.fleet import parse_config
from reconciler.diff.values import diff_values, secret_names
from reconciler.model.box import Stamp
from reconciler.model.live import BoxState, LiveBox
from reconciler.plan.model import Change, PathChange
from reconciler.render.canonical import render_payload, sha256_hex


@dataclass(frozen=True, slots=True)
class Desired:
    """What the repo wants on one box: the rendered bytes, their sha, the secrets referenced."""

    agent: str
    data: bytes
    sha: str
    secrets: frozenset[str]
    secrets_fingerprint: str | None = None  # of the secrets file apply writes (None: unknown)


def desired_of(
    repo: Repo, secrets_fingerprints: Mapping[str, str] | None = None
) -> dict[str, Desired]:
    """Every agent's rendered config, by name (with its secrets file's keyed fingerprint
    when the fleet key and the values are at hand)."""
    fps = secrets_fingerprints or {}
    out: dict[str, Desired] = {}
    for name, ea in repo.agents.items():
        data = render_payload(ea.agent.config)
        names = frozenset(secret_names(ea.agent.config))
        out[name] = Desired(name, data, sha256_hex(data), names, fps.get(name))
    return out


def restore_sources(stamp: Stamp | None) -> tuple[str, ...]:
    """The shas a box may be restored to from its own history (the revert fast path).

    Only configs of rollouts that ended well: an entry whose rollout also rolled the box
    back (a wave-1 canary of a rollout rolled back later, say) is no restore source.
    """
    if stamp is None:
        return ()
    entries = [*stamp.history]
    rolled = {e.rollout_id for e in entries if e.outcome == "rolled-back"}
    if stamp.outcome == "rolled-back":
        rolled.add(stamp.rollout_id)
    return tuple(
        dict.fromkeys(
            e.config_sha256
            for e in entries
            if e.outcome == "applied" and e.rollout_id not in rolled
        )
    )


def _secrets_differ(want: Desired, box: LiveBox) -> bool:
    """The box's secrets file is not the one apply would write (known on both sides only)."""
    # The wanted fingerprint is known only with the fleet key, and then the box's secrets
    # file was read too (None there: no secrets file on the box).
    if want.secrets_fingerprint is None:
        return False
    return box.secrets_fingerprint != want.secrets_fingerprint


@dataclass(frozen=True, slots=True)
class Survey:
    """Every agent of the repo sorted by what the rollout can do with its box."""

    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()
    unreachable: Mapping[str, str] = field(default_factory=dict)
    foreign: Mapping[str, str] = field(default_factory=dict)
    blocked: tuple[str, ...] = ()

    @property
    def refused(self) -> dict[str, str]:
        """Boxes that stop a rollout unless left out: unreachable and foreign, with reasons."""
        return {**self.unreachable, **self.foreign}


def _paths(ea: EffectiveAgent, live: LiveBox, repo: Repo) -> tuple[PathChange, ...]:
    current: dict[str, Any] = {}
    if live.config_bytes is not None:
        parsed = parse_config(ea.name, live.config_bytes)
        current = parsed if isinstance(parsed, dict) else {}
    schema = repo.payload_schema
    return tuple(
        PathChange(
            path=c.path,
            restart_required=schema.is_restart_required(c.path),
            cost_impacting=schema.is_cost_impacting(c.path),
        )
        for c in diff_values(current, ea.agent.config)
    )


def _move(old: str | None, new: str) -> dict[str, str | None]:
    """A Change's move fields: set when the agent's config path changed, else none."""
    return {} if old is None or old == new else {"moved_from": old, "config_path": new}


def survey(
    repo: Repo,
    desired: Mapping[str, Desired],
    live: Mapping[str, LiveBox],
    *,
    target_revision: str,
    fast_path: bool = True,
    moved_from: Mapping[str, str] | None = None,
) -> Survey:
    """Sort every agent of `repo` by comparing `desired` with the `live` boxes.

    `fast_path` False (a `--force` retry): no box is planned as a restore from its history,
    so every changing box gets the canary's soak and gates. `moved_from`: each agent's
    config path as last applied, when the caller knows it; a changing agent whose path
    differs is planned as a move (old path -> new).
    """
    before = moved_from or {}
    changes: list[Change] = []
    unchanged: list[str] = []
    unreachable: dict[str, str] = {}
    foreign: dict[str, str] = {}
    blocked: list[str] = []
    for name in sorted(repo.agents):
        ea, want, box = repo.agents[name], desired[name], live.get(name)
        if box is None or box.state is BoxState.UNKNOWN:
            unreachable[name] = (box.reason or "unreachable") if box else "the box was not read"
            continue
        if box.state is BoxState.FOREIGN:
            foreign[name] = box.reason or "stamped for another fleet or agent"
            continue
        stamp = box.stamp
        if stamp is not None and stamp.blocked_revision == target_revision:
            blocked.append(name)
        secrets = _secrets_differ(want, box)
        same = stamp is not None and stamp.config_sha256 == want.sha == box.config_sha256
        moving = before.get(name) not in (None, ea.agent.config_path)
        if same and not secrets and not moving:
            unchanged.append(name)
            continue
        history = restore_sources(stamp) if fast_path else ()
        changes.append(
            Change(
                agent=name,
                tier=ea.agent.tier,
                shard=ea.agent.shard,
                paths=_paths(ea, box, repo),
                desired_sha=want.sha,
                live_sha=box.config_sha256,
                stamp_sha=stamp.config_sha256 if stamp else None,
                stamp_revision=stamp.revision if stamp else None,
                history_shas=history,
                secrets=secrets,
                **_move(before.get(name), ea.agent.config_path),
            )
        )
    return Survey(tuple(changes), tuple(unchanged), unreachable, foreign, tuple(blocked))
