"""Each agent's wanted secrets file, fingerprinted: what diff and status compare boxes with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.config.repo import Repo
from reconciler.config.validate import secret_refs
from reconciler.secrets.resolve import MissingSecretError, fleet_key, resolve_values
from reconciler.secrets.values import fingerprint, render_secrets


def desired_fingerprints(
    repo: Repo, root: Path, env: Mapping[str, str] | None = None
) -> dict[str, str] | None:
    """agent -> fingerprint of the secrets file apply would write; None when not computable.

    Needs the fleet key and every referenced value; without them secrets are "not checked".
    """
    key = fleet_key(repo.fleet, root, env)
    if key is None:
        return None
    refs = {
        name: {ref for _, ref in secret_refs(ea.agent.config)} for name, ea in repo.agents.items()
    }
    try:
        values = resolve_values(set().union(*refs.values()), repo.fleet, root, env)
    except MissingSecretError:
        return None
    return {
        name: fingerprint(render_secrets(values.subset(wanted)), key)
        for name, wanted in refs.items()
        if wanted
    }
