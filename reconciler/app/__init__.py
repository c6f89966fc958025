"""The use cases, one module each: typed request in, typed result out, no printing.

cli -> app -> engine -> transport / metrics / journal -> pure core -> model. A use case
owns the reconciler's state (state.py: `open_state`), the connections of one command and
the order of its steps; progress goes to the `Reporter` (and the small views) the CLI
supplies. Errors are `reconciler.errors` subclasses, turned into exit codes by the CLI.
"""

from reconciler.app.apply import ApplyRequest, ApplyResult, ApplyView, apply
from reconciler.app.diff import DiffRequest, DiffResult, diff
from reconciler.app.history import HistoryRequest, HistoryResult, history
from reconciler.app.resume import ResumeRequest, ResumeResponse, resume
from reconciler.app.state import StateDir, Trace, holder_id, open_state
from reconciler.app.status import StatusRequest, StatusScope, scope, status
from reconciler.app.unlock import UnlockRequest, UnlockResult, unlock
from reconciler.app.validate import ValidateRequest, ValidateResult, validate

__all__ = [
    "ApplyRequest",
    "ApplyResult",
    "ApplyView",
    "DiffRequest",
    "DiffResult",
    "HistoryRequest",
    "HistoryResult",
    "ResumeRequest",
    "ResumeResponse",
    "StateDir",
    "StatusRequest",
    "StatusScope",
    "Trace",
    "UnlockRequest",
    "UnlockResult",
    "ValidateRequest",
    "ValidateResult",
    "apply",
    "diff",
    "history",
    "holder_id",
    "open_state",
    "resume",
    "scope",
    "status",
    "unlock",
    "validate",
]
