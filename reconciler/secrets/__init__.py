"""Secrets: references in config, values only at apply time, fingerprints everywhere else."""

from reconciler.secrets.values import (
    SecretValues,
    fingerprint,
    render_secrets,
)

__all__ = ["SecretValues", "fingerprint", "render_secrets"]
