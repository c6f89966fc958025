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


def desired_of(repo: Repo) -> dict[str, Desired]:
    """Every agent's rendered config, by name."""
    out: dict[str, Desired] = {}
    for name, ea in repo.agents.items():
        data = render_payload(ea.agent.config)
        out[name] = Desired(name, data, sha256_hex(data), frozenset(secret_names(ea.agent.config)))
    return out


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


def survey(
    repo: Repo,
    desired: Mapping[str, Desired],
    live: Mapping[str, LiveBox],
    *,
    target_revision: str,
) -> Survey:
    """Sort every agent of `repo` by comparing `desired` with the `live` boxes."""
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
        if stamp is not None and stamp.config_sha256 == want.sha == box.config_sha256:
            unchanged.append(name)
            continue
        history = tuple(dict.fromkeys(h.config_sha256 for h in (stamp.history if stamp else ())))
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
            )
        )
    return Survey(tuple(changes), tuple(unchanged), unreachable, foreign, tuple(blocked))
