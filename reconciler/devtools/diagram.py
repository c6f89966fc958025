"""Write or check the rollout state diagram in docs/rollout.md.

Usage:
    python -m reconciler.devtools.diagram            # print the mermaid block
    python -m reconciler.devtools.diagram --write docs/rollout.md
    python -m reconciler.devtools.diagram --check docs/rollout.md   # exit 1 when stale
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.devtools.generated import block_main
from reconciler.rollout.diagram import mermaid, splice


def main(argv: Sequence[str] | None = None) -> int:
    """Print, write or check the diagram; 1 when --check finds it stale."""
    return block_main(
        argv,
        block=mermaid,
        splice=splice,
        command="reconciler.devtools.diagram",
        what="the rollout diagram",
    )


if __name__ == "__main__":
    raise SystemExit(main())
