"""What an unexpected error needs to know about a command, light enough for the CLI to
import before it knows which command runs (no engine, journal or transport at import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.engine.driver import Driver

BoundaryHook = Callable[[str, str | None], None]  # (boundary, agent or None): the crash tests


@dataclass
class Trace:
    """What an unexpected error needs to know: where the state lives, whether a box changed.

    The CLI hands one in; the use case fills it in as it goes (never the exception).
    """

    state_dir: Path | None = None
    driver: Driver | None = None

    @property
    def changed(self) -> bool:
        """Some box may hold the new config (a rollout had changed one)."""
        return self.driver is not None and bool(self.driver.state.changed)
