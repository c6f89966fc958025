"""The rollout state diagram, drawn from the machine's tables (a mermaid block for docs/rollout.md).

Pure: `mermaid()` draws it, `splice()` puts it between the markers of a text; the
command that reads and writes docs/rollout.md is `python -m reconciler.devtools.diagram`.

Event-triggered edges are labelled with the events (several per edge when
they share it); state-triggered edges with their guard in brackets.
"""

from __future__ import annotations

from typing import Final

from reconciler.rollout.machine import EVENT_TRANSITIONS, STATE_TRANSITIONS
from reconciler.rollout.phases import Phase

BEGIN: Final = "<!-- BEGIN rollout-diagram (python -m reconciler.devtools.diagram --write) -->"
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
