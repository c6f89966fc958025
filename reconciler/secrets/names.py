"""Secret names: which environment variable holds each, and the error naming the missing ones.

Pure: where values are looked up (environment, files) is the edge's job
(reconciler/secretstore/); this only names things, never shows a value.
"""

from __future__ import annotations

from reconciler.errors import InputError

ENV_PREFIX = "RECONCILER_SECRET_"


def env_name(name: str) -> str:
    """The environment variable that holds secret `name`'s value: RECONCILER_SECRET_<NAME>."""
    return f"{ENV_PREFIX}{name.upper()}"


class MissingSecretError(InputError):
    """One or more secret values could not be found."""

    def __init__(self, missing: dict[str, str], *, failed: bool = False) -> None:
        self.missing = missing
        self.failed = failed  # a backend failed (not merely: no value anywhere)
        lines = [f"secret {name!r}: {where}" for name, where in sorted(missing.items())]
        head = (
            "secret value(s) cannot be read from their backend; nothing was written"
            if failed
            else "missing secret value(s), nothing was written"
        )
        super().__init__(f"{head}:\n  " + "\n  ".join(lines))
