"""The `MetricSource` protocol: open a window on some agents, measure it later (again and again).

`open(agents)` marks the start; `measure(mark, agents)` returns each agent's
`AgentWindow` from the mark to now, or why there is none (a string). Calling
`measure` again with the same mark gives a longer window: that is how an
inconclusive gate waits for more data. A source that cannot answer at all
(Prometheus down) raises `SourceError`; the gate runner retries a bounded
number of times and then fails the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.errors import BoxError
from reconciler.gates import AgentWindow


class SourceError(BoxError):
    """The metric source did not answer (or answered nonsense) as a whole."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """Every asked agent's window (or why not), and the source's clock when it was taken."""

    now: float
    windows: Mapping[str, AgentWindow | str]


class MetricSource(Protocol):
    """Per-agent counter increases over a window, from somewhere."""

    name: str

    async def open(self, agents: Sequence[str]) -> object:
        """Mark the start of a window for `agents`; SourceError if the source is down."""
        ...

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        """The windows from `mark` to now; SourceError if the source is down."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
