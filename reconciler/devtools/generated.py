"""Print, write or check a generated block between two markers of a doc file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def block_main(
    argv: Sequence[str] | None,
    *,
    block: Callable[[], str],
    splice: Callable[[str, str], str],
    command: str,
    what: str,
) -> int:
    """`[--write|--check FILE]`: print the block, write it into FILE, or exit 1 when FILE's
    copy is stale (2 on a usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text_block = block()
    if not args:
        sys.stdout.write(text_block)
        return 0
    if len(args) != 2 or args[0] not in {"--write", "--check"}:
        sys.stderr.write(f"usage: python -m {command} [--write|--check FILE]\n")
        return 2
    path = Path(args[1])
    text = path.read_text(encoding="utf-8")
    fresh = splice(text, text_block)
    if args[0] == "--check":
        if fresh != text:
            sys.stderr.write(f"{path}: {what} is stale; run with --write\n")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0
