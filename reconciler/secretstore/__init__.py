"""The edge that finds secret values and the fleet key: the environment, files, and the
repo's age-encrypted secrets/NAME.age (looked up in that order).

I/O only; handling, rendering and fingerprinting values is the pure
reconciler/secrets/ package.
"""

from reconciler.secrets.names import ENV_PREFIX, MissingSecretError, env_name
from reconciler.secretstore.age import AgeError
from reconciler.secretstore.local import (
    BACKENDS,
    Backend,
    SecretSource,
    SecretUnavailable,
    backend_of,
    desired_fingerprints,
    fleet_key,
    repo_path,
    resolve_values,
)

__all__ = [
    "BACKENDS",
    "ENV_PREFIX",
    "AgeError",
    "Backend",
    "MissingSecretError",
    "SecretSource",
    "SecretUnavailable",
    "backend_of",
    "desired_fingerprints",
    "env_name",
    "fleet_key",
    "repo_path",
    "resolve_values",
]
