"""The demo fleet: simulated AI-agent boxes on loopback that honour the box contract.

Each box is a real asyncssh server (SFTP chrooted to the box's directory,
exec of its configured commands only) and a real HTTP server (/healthz,
/metrics), in front of a simulated agent whose errors, latency, tokens and
cost follow its loaded config and its injected faults. The product talks to
them exactly as to real OpenSSH boxes and never special-cases them.

- `DemoFleet.start(dir, agents=N)`: boxes in the current event loop (tests).
- `runner.up(dir, N)` / `runner.down(dir)`: boxes in worker processes (CLI, benchmarks).
- `control.inject(dir, agent, kind)`: faults for a running fleet, over the box's /_demo/ API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.demo.agent import CommandResult, SimAgent
    from reconciler.demo.box import BoxSpec, Counters, DemoBox
    from reconciler.demo.faults import FaultError, FaultKind, Faults
    from reconciler.demo.fleet import BoxGroup, DemoFleet
    from reconciler.demo.fleetrepo import (
        FIRST_FAST_MODEL,
        HEAD_FAST_MODEL,
        HEAD_MESSAGE,
        DemoAgent,
        DemoSetupError,
        agent_names,
    )
    from reconciler.demo.layout import DemoDir
    from reconciler.demo.workload import POISON_MARKER, PRICING, Behaviour, behaviour

# Loaded on first use (PEP 562): `reconcile --help` reads demo.faults' names, not asyncssh.
_WHERE = {
    "agent": ("CommandResult", "SimAgent"),
    "box": ("BoxSpec", "Counters", "DemoBox"),
    "faults": ("FaultError", "FaultKind", "Faults"),
    "fleet": ("BoxGroup", "DemoFleet"),
    "fleetrepo": (
        "FIRST_FAST_MODEL", "HEAD_FAST_MODEL", "HEAD_MESSAGE", "DemoAgent", "DemoSetupError",
        "agent_names",
    ),
    "layout": ("DemoDir",),
    "workload": ("POISON_MARKER", "PRICING", "Behaviour", "behaviour"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    """A name of `_WHERE`, its module imported on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "FIRST_FAST_MODEL",
    "HEAD_FAST_MODEL",
    "HEAD_MESSAGE",
    "POISON_MARKER",
    "PRICING",
    "Behaviour",
    "BoxGroup",
    "BoxSpec",
    "CommandResult",
    "Counters",
    "DemoAgent",
    "DemoBox",
    "DemoDir",
    "DemoFleet",
    "DemoSetupError",
    "FaultError",
    "FaultKind",
    "Faults",
    "SimAgent",
    "agent_names",
    "behaviour",
]
