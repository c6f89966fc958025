"""The rollout state diagram, drawn from the machine's tables (a mermaid block for docs/rollout.md).

Usage:
    python -m reconciler.rollout.diagram            # print the mermaid block
    python -m reconciler.rollout.diagram --write docs/rollout.md
    python -m reconciler.rollout.diagram --check docs/rollout.md   # exit 1 when stale

Event-triggered edges are labelled with the events (several per edge when
they share it); state-triggered edges with their guard in brackets.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from reconciler.rollout.machine import EVENT_TRANSITIONS, STATE_TRANSITIONS
from reconciler.rollout.phases import Phase

BEGIN: Final = "<!-- BEGIN rollout-diagram (python -m reconciler.rollout.diagram --write) -->"
END: Final = "<!-- END rollout-diagram -->"


def mermaid() -> str:
    """The state diagram as a fenced mermaid block."""
    edges: dict[tuple[Phase, Phase], list[str]] = {}
    for (src, event), dst in EVENT_TRANSITIONS.items():
        edges.setdefault((src, dst), []).append(event.__name__)
    for src, guard, _, dst in STATE_TRANSITIONS:
        edges.setdefault((src, dst), []).append(f"[{guard}]")
    order = list(Phase)
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {Phase.PLANNED.name}"]
    for (src, dst), labels in sorted(
        edges.items(), key=lambda e: (order.index(e[0][0]), order.index(e[0][1]))
    ):
        lines.append(f"    {src.name} --> {dst.name}: {', '.join(labels)}")
    lines.extend(f"    {p.name} --> [*]" for p in Phase if p.terminal)
    lines.append("```")
    return "\n".join(lines) + "\n"


def splice(text: str, block: str) -> str:
    """`text` with the part between the markers replaced by `block`."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"markers not found: put {BEGIN!r} and {END!r} in the file")
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print, write or check the diagram; 1 when --check finds it stale."""
    args = list(sys.argv[1:] if argv is None else argv)
    block = mermaid()
    if not args:
        sys.stdout.write(block)
        return 0
    if len(args) != 2 or args[0] not in {"--write", "--check"}:
        sys.stderr.write("usage: python -m reconciler.rollout.diagram [--write|--check FILE]\n")
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
