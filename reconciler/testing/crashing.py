"""`python -m reconciler.testing.crashing ARGS...`: `reconcile ARGS...` that can kill itself.

The crash-resume tests and bench/bench_crash.py run this instead of `reconcile` when
they want a crash: it reads RECONCILER_CRASH_AT (crashpoints.py), builds the boundary
hook, and runs the CLI's `main` with the hook injected. The product itself never
reads a crash variable.
"""

from __future__ import annotations

import sys

from reconciler.cli.app import main as cli_main
from reconciler.engine.driver import BOUNDARIES, JOURNAL_BOUNDARIES, MOVE_BOUNDARIES
from reconciler.engine.resume import RESUME_BOUNDARIES
from reconciler.engine.rules import RULES_BOUNDARIES
from reconciler.testing import crashpoints


def main(argv: list[str] | None = None) -> None:
    """Run the CLI with the crash hook of RECONCILER_CRASH_AT (none when it is unset)."""
    known = (*BOUNDARIES, *MOVE_BOUNDARIES, *JOURNAL_BOUNDARIES, *RESUME_BOUNDARIES,
             *RULES_BOUNDARIES)  # fmt: skip
    hook = crashpoints.hook(known)
    cli_main(sys.argv[1:] if argv is None else argv, boundary_hook=hook)


if __name__ == "__main__":
    main()
