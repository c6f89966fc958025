"""Loopback ports for test servers that learn their port before they bind it.

A server that binds port 0 itself gets a port from the kernel's ephemeral range and
never races. A server started as a separate process (sshd, postgres, a real agent,
Prometheus) must be told its port first: a port the kernel handed out with a bind to 0
and closed again is in the ephemeral range, where any other test's outgoing connection
or port-0 listener (a 1,000-box demo holds 2,000 of them) can take it before the server
binds — CI saw `Address already in use`. These ports come from below the ephemeral
range, which the kernel never hands out on its own.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000
_TRIES = 200


def _below_ephemeral() -> tuple[int, int]:
    """[low, high) of the ports below the kernel's ephemeral range (a fallback elsewhere)."""
    try:
        first = int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return _LOWEST, max(first, _LOWEST + 1000)


def free_port() -> int:
    """A TCP port on 127.0.0.1, below the ephemeral range, that was free a moment ago."""
    low, high = _below_ephemeral()
    for _ in range(_TRIES):
        port = random.randrange(low, high)  # noqa: S311 - picking a port, not a secret
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {low}-{high} after {_TRIES} tries")


def closed_port() -> int:
    """A loopback port nothing listens on (for connect-refused cases)."""
    return free_port()
