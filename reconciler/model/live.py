"""What a box really runs, as read by the transport: the input of the live diff and status.

Built at the edge (transport/live.py reads stamp, config bytes, secrets
fingerprint, health and metrics of each box); consumed by the pure core
(diff/, status, plan). A box is never silently skipped: an unreachable one
is `UNKNOWN` with the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconciler.model.box import Health, Stamp


class BoxState(enum.StrEnum):
    """How reconciler stands with a box."""

    MANAGED = "managed"  # stamped by this fleet for this agent
    UNMANAGED = "unmanaged"  # no stamp: the first apply adopts it
    FOREIGN = "foreign"  # a valid stamp for another fleet or agent: refused
    # Could not be read (unreachable, refused host key, ...), or its stamp is unreadable (not
    # JSON, or not a stamp): whose box it is cannot be known, so it is neither ours nor foreign.
    UNKNOWN = "unknown"


class SecretsCheck(enum.StrEnum):
    MATCH = "match"
    CHANGED = "changed"
    MISSING = "missing"  # no secrets file on the box
    NOT_CHECKED = "not-checked"  # no fleet key here: fingerprints cannot be computed


@dataclass(frozen=True, slots=True)
class LiveBox:
    """One box as read just now. Bytes, never a cached copy."""

    agent: str
    state: BoxState
    reason: str | None = None  # why UNKNOWN or FOREIGN, naming the box and operation
    stamp: Stamp | None = None
    config_bytes: bytes | None = None  # None: no config file on the box
    config_sha256: str | None = None
    secrets_fingerprint: str | None = None  # of the box's secrets file (None: not checked)
    health: Health | None = None
    health_error: str | None = None
    # Set when the box answered but its stamp file is not a valid stamp (state UNKNOWN).
    stamp_error: str | None = None
    # The box's lease file as read (None: no run holds the box); apply waits for or refuses
    # a box whose lease a live run of another process holds (engine/leasecheck.py).
    lease_bytes: bytes | None = None

    @property
    def drifted(self) -> bool:
        """The file on the box is not what the stamp says was written (a hand edit)."""
        return (
            self.stamp is not None
            and self.config_sha256 is not None
            and self.config_sha256 != self.stamp.config_sha256
        )
