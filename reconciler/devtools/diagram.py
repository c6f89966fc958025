"""Write or check the rollout state diagram in docs/rollout.md.

Usage:
    python -m reconciler.devtools.diagram            # print the mermaid block
    python -m reconciler.devtools.diagram --write docs/rollout.md
    python -m reconciler.devtools.diagram --check docs/rollout.md   # exit 1 when stale
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.rollout.diagram import mermaid, splice


def main(argv: Sequence[str] | None = None) -> int:
    """Print, write or check the diagram; 1 when --check finds it stale."""
    args = list(sys.argv[1:] if argv is None else argv)
    block = mermaid()
    if not args:
        sys.stdout.write(block)
        return 0
    if len(args) != 2 or args[0] not in {"--write", "--check"}:
        sys.stderr.write("usage: python -m reconciler.devtools.diagram [--write|--check FILE]\n")
        return 2
    path = Path(args[1])
    text = path.read_text(encoding="utf-8")
    fresh = splice(text, block)
    if args[0] == "--check":
        if fresh != text:
            sys.stderr.write(f"{path}: the rollout diagram is stale; run with --write\n")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
