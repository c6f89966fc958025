"""Each agent's wanted secrets file, fingerprinted: what diff and status compare boxes with.

Pure: the values and the fleet key come from the edge
(reconciler/secretstore/, `desired_fingerprints`).
"""

from __future__ import annotations

from reconciler.config.repo import Repo
from reconciler.config.validate import secret_refs
from reconciler.secrets.values import SecretValues, fingerprint, render_secrets


def referenced(repo: Repo) -> dict[str, set[str]]:
    """agent -> the names of the secrets its payload refers to."""
    return {
        name: {ref for _, ref in secret_refs(ea.agent.config)} for name, ea in repo.agents.items()
    }


def fingerprints(refs: dict[str, set[str]], values: SecretValues, key: bytes) -> dict[str, str]:
    """agent -> fingerprint of the secrets file apply would write, for agents with secrets."""
    return {
        name: fingerprint(render_secrets(values.subset(wanted)), key)
        for name, wanted in refs.items()
        if wanted
    }
