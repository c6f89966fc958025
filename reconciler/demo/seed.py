"""Seeding demo boxes with a revision, using the product's own render, secrets and stamp code.

Each box gets exactly what an apply of that revision would leave: the rendered
config, the same bytes in its history directory, the secrets file (mode 0600)
and the state stamp. So the first `reconcile diff` shows no false drift.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from reconciler.config.repo import load_repo
from reconciler.config.validate import secret_refs
from reconciler.demo.agent import local_path
from reconciler.demo.layout import DemoDir, write_private
from reconciler.model.agent import Agent
from reconciler.model.box import BoxPaths
from reconciler.render.canonical import render_payload, sha256_hex
from reconciler.render.stamp import SecretState, make_stamp
from reconciler.repo import read_revision
from reconciler.secrets.desired import prints_of, slots_for
from reconciler.secrets.secretsfile import render_secrets_file
from reconciler.secrets.values import fingerprint
from reconciler.secretstore import fleet_key, resolve_values

SEED_ROLLOUT_ID = "demo-seed"


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def seed_boxes(d: DemoDir, revision: str, *, now: datetime | None = None) -> dict[str, Agent]:
    """Write `revision`'s config, history, secrets and stamp onto every box; return the agents."""
    rev = read_revision(d.repo, revision)
    repo = load_repo(rev.files)
    key = fleet_key(repo.fleet, d.repo, env={})
    now = now or datetime.now(UTC)
    agents: dict[str, Agent] = {}
    for name, effective in repo.agents.items():
        agent = effective.agent
        root = d.box_root(name)
        paths = BoxPaths.of(agent.config_path, agent.secrets_path)
        data = render_payload(agent.config)
        sha = sha256_hex(data)
        names = {ref for _, ref in secret_refs(agent.config)}
        values = resolve_values(names, repo.fleet, d.repo, env={})
        slots = slots_for(names, values, {})
        secrets_bytes = render_secrets_file(slots)
        state = None
        if key is not None:
            state = SecretState(fingerprint(secrets_bytes, key), prints_of(slots, key))
        stamp = make_stamp(
            fleet_id=repo.fleet.fleet_id,
            agent=name,
            revision=rev.sha,
            config_sha256=sha,
            rollout_id=SEED_ROLLOUT_ID,
            outcome="applied",
            now=now,
            keep=repo.fleet.rollout.history_keep,
            secrets=state,
        )
        _write(local_path(root, paths.config), data)
        _write(local_path(root, paths.history_file(sha)), data)
        write_private(local_path(root, paths.secrets), secrets_bytes)
        _write(local_path(root, paths.stamp), stamp.to_bytes())
        agents[name] = agent
    return agents
