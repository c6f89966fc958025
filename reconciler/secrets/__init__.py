"""Secrets: references in config, values only at apply time, fingerprints everywhere else.

Pure: values are handled, rendered and fingerprinted here; reading them from
the environment or files is the edge's job (reconciler/secretstore/).
"""

from reconciler.secrets.names import ENV_PREFIX, MissingSecretError, env_name
from reconciler.secrets.values import (
    SecretValues,
    fingerprint,
    render_secrets,
)

__all__ = [
    "ENV_PREFIX",
    "MissingSecretError",
    "SecretValues",
    "env_name",
    "fingerprint",
    "render_secrets",
]
