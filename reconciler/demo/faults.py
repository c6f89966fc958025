"""Fault injection for demo boxes: what can go wrong with a box, as data.

A box holds a `Faults` value: the set of active fault kinds, each with its
argument (a number, or none). The agent, the SSH server and the SFTP server
each ask it what to do; nothing else knows about faults. Faults stay until
cleared, except the one-shot kinds: `crash-on-reload` fires at the next
reload, `connection-reset` acts the moment it is set (every open SSH
connection of the box is reset) and is gone at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from reconciler.errors import InputError


class FaultKind(enum.StrEnum):
    """Every way a demo box can be made to misbehave."""

    CRASH_ON_RELOAD = "crash-on-reload"  # the next reload crashes the agent (once)
    FLAP = "flap"  # the agent crashes VALUE seconds after every successful reload
    STALL = "stall"  # alive, queue filling, zero throughput
    ERROR_RATE = "error-rate"  # VALUE (0..1) of tasks fail, on top of the config's own
    LATENCY = "latency"  # VALUE seconds added to every task
    TOKENS = "tokens"  # output tokens multiplied by VALUE
    SSH_HANG = "ssh-hang"  # SSH accepts connections, then never answers
    SSH_REFUSED = "ssh-refused"  # the SSH port refuses connections
    HOST_KEY_CHANGED = "host-key-changed"  # SSH presents another host key
    DISK_FULL = "disk-full"  # SFTP writes and mkdir fail with ENOSPC
    DROP_TRANSFER = "drop-transfer"  # the SSH connection drops in the middle of an upload
    CLOCK_SKEW = "clock-skew"  # the heartbeat clock runs VALUE seconds behind
    CONNECTION_RESET = "connection-reset"  # every open SSH connection is reset (once)
    SLOW_RELOAD = "slow-reload"  # reload and restart take VALUE seconds before they act

    @property
    def takes_value(self) -> bool:
        """Whether the kind needs a numeric argument."""
        return self in _DEFAULTS

    @property
    def default(self) -> float | None:
        return _DEFAULTS.get(self)

    @property
    def help(self) -> str:
        return _HELP[self]


_DEFAULTS: dict[FaultKind, float] = {
    FaultKind.FLAP: 5.0,
    FaultKind.ERROR_RATE: 0.5,
    FaultKind.LATENCY: 2.0,
    FaultKind.TOKENS: 6.0,
    FaultKind.CLOCK_SKEW: 120.0,
    FaultKind.SLOW_RELOAD: 10.0,
}

_HELP: dict[FaultKind, str] = {
    FaultKind.CRASH_ON_RELOAD: "the next reload crashes the agent (fires once)",
    FaultKind.FLAP: "crash VALUE seconds (default 5) after every successful reload",
    FaultKind.STALL: "alive, queue filling, zero throughput",
    FaultKind.ERROR_RATE: "VALUE (0..1, default 0.5) of tasks fail",
    FaultKind.LATENCY: "add VALUE seconds (default 2) to every task",
    FaultKind.TOKENS: "multiply output tokens by VALUE (default 6)",
    FaultKind.SSH_HANG: "SSH accepts connections, then never answers",
    FaultKind.SSH_REFUSED: "the SSH port refuses connections",
    FaultKind.HOST_KEY_CHANGED: "SSH presents another host key",
    FaultKind.DISK_FULL: "SFTP writes and mkdir fail: no space left on device",
    FaultKind.DROP_TRANSFER: "the SSH connection drops in the middle of an upload",
    FaultKind.CLOCK_SKEW: "the heartbeat clock lags VALUE seconds (default 120)",
    FaultKind.CONNECTION_RESET: (
        "reset every open SSH connection of the box now, as a network reset would (fires "
        "once; new connections work)"
    ),
    FaultKind.SLOW_RELOAD: (
        "reload and restart wait VALUE seconds (default 10) before they act and exit 0; "
        "a client that gives up first abandons them"
    ),
}


class FaultError(InputError, ValueError):
    """A fault request that makes no sense (unknown kind, bad value)."""


def parse_kind(text: str) -> FaultKind:
    """The fault kind named `text`; FaultError listing the kinds otherwise."""
    try:
        return FaultKind(text)
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise FaultError(f"unknown fault kind {text!r}; one of: {kinds}") from None


def check_value(kind: FaultKind, value: float | None) -> float | None:
    """The fault's argument, defaulted and range-checked."""
    if not kind.takes_value:
        if value is not None:
            raise FaultError(f"fault {kind} takes no value")
        return None
    if value is None:
        return kind.default
    if kind is FaultKind.ERROR_RATE and not 0 <= value <= 1:
        raise FaultError(f"fault {kind}: VALUE is a fraction of tasks, 0..1; got {value}")
    if value < 0:
        raise FaultError(f"fault {kind}: VALUE must not be negative; got {value}")
    return value


@dataclass
class Faults:
    """The active faults of one box."""

    active: dict[FaultKind, float | None] = field(default_factory=dict)

    def set(self, kind: FaultKind, value: float | None = None) -> None:
        self.active[kind] = check_value(kind, value)

    def clear(self, kind: FaultKind | None = None) -> None:
        """Remove one fault, or all of them."""
        if kind is None:
            self.active.clear()
        else:
            self.active.pop(kind, None)

    def has(self, kind: FaultKind) -> bool:
        return kind in self.active

    def value(self, kind: FaultKind, otherwise: float = 0.0) -> float:
        """The argument of an active fault, or `otherwise` when it is not active."""
        value = self.active.get(kind)
        return otherwise if value is None else value

    def take(self, kind: FaultKind) -> bool:
        """Whether a one-shot fault is active; it is removed when it is."""
        return self.active.pop(kind, False) is not False

    def as_dict(self) -> dict[str, float | None]:
        return {kind.value: value for kind, value in sorted(self.active.items())}
