"""Each agent's wanted secrets file, fingerprinted: what diff and status compare boxes with.

Pure: the values and the fleet key come from the edge
(reconciler/secretstore/, `desired_fingerprints`). A rotation overrides some secrets'
slots (`current` and `next`); every other secret is its backend value as `current`.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.config.repo import Repo
from reconciler.config.validate import secret_refs
from reconciler.model.box import SecretPrint
from reconciler.secrets.secretsfile import Slot, render_secrets_file
from reconciler.secrets.values import SecretValues, fingerprint, value_fingerprint


def referenced(repo: Repo) -> dict[str, set[str]]:
    """agent -> the names of the secrets its payload refers to."""
    return {
        name: {ref for _, ref in secret_refs(ea.agent.config)} for name, ea in repo.agents.items()
    }


def slots_for(
    wanted: set[str] | frozenset[str], values: SecretValues, override: Mapping[str, Slot]
) -> dict[str, Slot]:
    """The slots of one agent's secrets file: `override`'s where given, else the value."""
    return {n: override[n] if n in override else Slot(values.reveal(n)) for n in sorted(wanted)}


def prints_of(slots: Mapping[str, Slot], key: bytes) -> dict[str, SecretPrint]:
    """Per secret, the keyed fingerprints of its `current` and `next` values."""
    return {
        n: SecretPrint(
            current=value_fingerprint(s.current, key),
            next=value_fingerprint(s.next, key) if s.next is not None else None,
        )
        for n, s in slots.items()
    }


def fingerprints(
    refs: Mapping[str, set[str]],
    values: SecretValues,
    key: bytes,
    override: Mapping[str, Slot] | None = None,
) -> dict[str, str]:
    """agent -> fingerprint of the secrets file apply would write, for agents with secrets."""
    return {
        name: fingerprint(render_secrets_file(slots_for(wanted, values, override or {})), key)
        for name, wanted in refs.items()
        if wanted
    }
