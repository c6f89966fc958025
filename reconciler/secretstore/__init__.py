"""The edge that finds secret values and the fleet key: the environment and files.

I/O only; handling, rendering and fingerprinting values is the pure
reconciler/secrets/ package.
"""

from reconciler.secrets.names import ENV_PREFIX, MissingSecretError, env_name
from reconciler.secretstore.local import (
    desired_fingerprints,
    fleet_key,
    repo_path,
    resolve_values,
)

__all__ = [
    "ENV_PREFIX",
    "MissingSecretError",
    "desired_fingerprints",
    "env_name",
    "fleet_key",
    "repo_path",
    "resolve_values",
]
