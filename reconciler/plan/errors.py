"""The plan's one error type: bad planning input, or a saved plan whose boxes moved."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import InputError


class PlanError(InputError):
    """A plan that cannot be made or used; the message says which input or box, and what to do.

    `agents` names the boxes at fault (empty when the fault is in the policy or the file).
    """

    def __init__(self, message: str, agents: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.agents = tuple(agents)
