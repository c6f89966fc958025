"""One error tree for the whole program, each kind with the exit code it ends the command with.

    ReconcilerError        exit_code 1 unless a subclass says otherwise
    ├── InputError         the operator's input: bad config, a refused plan, a missing secret,
    │                      a git revision that is not there, a bad option value
    ├── BoxError           a box: transport, a box operation, a box breaking the contract
    └── StateError         the reconciler's own state: the journal, the fleet lock

Every layer raises its own subclass (`ConfigErrors` is an `InputError`, `TransportError`
a `BoxError`, `LockHeld` a `StateError`); the CLI turns any of them into one line on
stderr and its `exit_code`, in one place (`reconciler/cli/exits.py`). Anything else that
reaches the top is a bug: its traceback is kept in the state dir. This module imports
nothing of reconciler, so every layer may use it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes every command keeps (design.md, CLI conventions)."""

    OK = 0
    ERROR = 1
    CHANGES = 2
    ROLLED_BACK = 3
    ROLLBACK_FAILED = 4


class ReconcilerError(Exception):
    """An error the operator can act on; the message says what and what to do.

    `details` are lines printed before the one-line error (each config error, say).
    """

    exit_code: int = ExitCode.ERROR
    details: tuple[str, ...] = ()


class InputError(ReconcilerError):
    """Bad input: config, a refused plan, a missing secret, an unknown revision or option."""


class BoxError(ReconcilerError):
    """A box could not be talked to, refused an operation, or broke the box contract."""


class StateError(ReconcilerError):
    """The reconciler's own state (journal, fleet lock) cannot do what was asked."""


class Refused(InputError):
    """A use case refused the request before anything changed; carries detail lines."""

    def __init__(self, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.details = details


class Interrupted(ReconcilerError):
    """The operator interrupted the command (Ctrl-C) before it changed anything."""


__all__ = [
    "BoxError",
    "ExitCode",
    "InputError",
    "Interrupted",
    "ReconcilerError",
    "Refused",
    "StateError",
]
