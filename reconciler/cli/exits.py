"""The one place an exception becomes an exit code (the root group's `invoke` calls it).

A `ReconcilerError` is one red line on stderr (after its detail lines) and its
`exit_code`; nothing else reaches the operator as a traceback. Any other exception
is a bug: its traceback is kept in the state dir (`--debug` prints it too), and the
exit is 3 when a rollout had changed a box (run apply again to settle), else 1.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from rich.markup import escape

from reconciler.cli.common import CliState, err
from reconciler.errors import ExitCode, ReconcilerError


def reconciler_error(exc: ReconcilerError) -> int:
    """Print the error (its detail lines first); its exit code."""
    for line in exc.details:
        err.print(line, markup=False)
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
    return int(exc.exit_code)


def internal_error(exc: BaseException, state: CliState, label: str) -> int:
    """One line for an unexpected error, its traceback saved; 3 when a box may have changed."""
    from reconciler.app.state import save_traceback, state_dir_of  # the journal's dir helpers

    text = "".join(traceback.format_exception(exc))
    where = Path(state.trace.state_dir or state_dir_of(None, None))
    try:
        path = save_traceback(where, label, text)
    except OSError:
        path = "(could not be saved)"
    if state.debug:
        err.print(text, markup=False)
    changed = state.trace.changed
    then = (
        "some boxes may hold the new config: run `reconcile apply` again to settle them"
        if changed
        else "nothing was written"
    )
    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    hint = " (--debug prints it)" if state.debug is not None else ""
    message = (
        f"internal error (a reconciler bug, not the config): {what}; {then}; traceback in "
        f"{path}{hint}"
    )
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    return int(ExitCode.ROLLED_BACK if changed else ExitCode.ERROR)
