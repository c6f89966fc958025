"""The docs' state diagram is generated from the machine's tables and kept fresh."""

from __future__ import annotations

from pathlib import Path

from reconciler.devtools.diagram import main
from reconciler.rollout.diagram import mermaid
from reconciler.rollout.machine import EVENT_TRANSITIONS, STATE_TRANSITIONS
from reconciler.rollout.phases import Phase

DOC = Path(__file__).resolve().parents[2] / "docs" / "rollout.md"


def test_docs_hold_the_current_diagram() -> None:
    """docs/rollout.md has the diagram the tables draw today (else: --write it)."""
    assert mermaid() in DOC.read_text(encoding="utf-8")
    assert main(["--check", str(DOC)]) == 0


def test_every_transition_is_drawn() -> None:
    """Each event and each guard of the tables appears on the edge it labels."""
    text = mermaid()
    for (src, event), dst in EVENT_TRANSITIONS.items():
        line = next(
            ln for ln in text.splitlines() if ln.strip().startswith(f"{src.name} --> {dst.name}:")
        )
        assert event.__name__ in line
    for src, guard, _, dst in STATE_TRANSITIONS:
        assert f"{src.name} --> {dst.name}:" in text and f"[{guard}]" in text
    for phase in Phase:
        assert phase.name in text


def test_stale_file_is_reported(tmp_path: Path) -> None:
    """--check fails on a file whose diagram is out of date, --write fixes it."""
    stale = tmp_path / "rollout.md"
    text = DOC.read_text(encoding="utf-8").replace("SoakOver", "SoakEnded")
    stale.write_text(text, encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
