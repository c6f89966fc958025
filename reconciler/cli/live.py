"""The live rollout display on a terminal (rich Live on stderr).

The picture, redrawn as notes come (at most `FPS` times a second, and on every phase
change): the rollout and its revision, one row per wave with a progress bar (applied /
failed / restored of N) and its phase (applying, watchdog, soaking with the time left,
gates), and the undecided gates of the wave being judged with what they wait for.
What must stay on screen is printed above the picture and scrolls with the terminal:
every failed, restored or not-restored box with its reason, each wave's gate verdicts,
the rollback's trigger, warnings, the incident report. All text is printed as text,
never as rich markup (`^[a-z0-9]{0,62}$` prints as is).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reconciler.report.progress import Progress, WaveProgress, phase_words
from reconciler.report.progress_lines import ProgressLines, gate_text

if TYPE_CHECKING:
    from reconciler.rollout.reporter import JsonValue

FPS = 8.0
# Notes whose lines are printed above the picture (they stay); the rest only redraw it.
KEPT = frozenset({
    "preflight.failed", "box.failed", "watchdog.failed", "soak.problem", "gates.passed",
    "gates.failed", "gates.retry", "rollback.started", "box.restored", "box.restore_failed",
    "box.moved", "warning", "internal.error", "incident.written", "resume.started",
    "resume.finished",
})  # fmt: skip
_STYLE = {
    "box.failed": "bold red", "watchdog.failed": "bold red", "soak.problem": "bold red",
    "gates.failed": "bold red", "preflight.failed": "bold red", "internal.error": "bold red",
    "box.restore_failed": "bold red reverse", "rollback.started": "bold yellow",
    "box.restored": "yellow", "warning": "yellow", "gates.passed": "green",
}  # fmt: skip
_PHASE_STYLE = {"passed": "green", "failed": "bold red", "waiting": "dim"}


def wave_row(w: WaveProgress, waves: int) -> tuple[Text, ProgressBar, Text, Text]:
    """One wave: its number, a bar of the boxes done, the counts, the phase."""
    counts = f"{w.applied}/{w.size} applied"
    if w.failed:
        counts += f", {w.failed} failed"
    if w.restored or w.restore_failed:
        counts += f", {w.restored} restored"
    if w.restore_failed:
        counts += f", {w.restore_failed} NOT restored"
    bad = w.failed or w.restore_failed or w.phase == "failed"
    bar = ProgressBar(
        total=max(w.size, 1), completed=w.done if w.size else 1, width=30,
        complete_style="red" if bad else "green", finished_style="red" if bad else "green",
    )  # fmt: skip
    phase = Text(phase_words(w), style=_PHASE_STYLE.get(w.phase, "cyan"))
    return Text(f"wave {w.number}/{waves}"), bar, Text(counts), phase


def picture(p: Progress) -> RenderableType:
    """The whole live picture of `p`."""
    head = Text(f"rollout {p.rollout_id}", style="bold")
    if p.revision:
        head.append(f"  revision {p.revision}")
    if p.waves:
        head.append(f"  {p.boxes} box(es) in {len(p.waves)} wave(s)")
    head.append(f"  {p.headline()}", style="bold cyan")
    parts: list[RenderableType] = [head]
    if p.resume:
        parts.append(Text(p.resume))
    if p.waves:
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(no_wrap=True)
        for wave in p.waves:
            table.add_row(*wave_row(wave, len(p.waves)))
        parts.append(table)
    w = p.current
    if w is not None and w.phase == "gates":
        for g in w.gates.values():
            parts.append(Text(f"  {gate_text(g)}", style="yellow" if not g.ok else "green"))
    if p.trigger:
        parts.append(Text(f"rolling back: {p.trigger}", style="bold yellow"))
    return Group(*parts)


class LiveReporter:
    """A Reporter drawing the live picture on `console` (a terminal's stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lines = ProgressLines()
        self._live: Live | None = None
        self._drawn = 0.0

    @property
    def progress(self) -> Progress:
        return self.lines.progress

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        phase = self.progress.phase, [w.phase for w in self.progress.waves]
        kept = self.lines.lines(kind, fields)
        if self._live is None:
            self._live = Live(
                picture(self.progress), console=self.console, auto_refresh=False,
                transient=False, redirect_stdout=False, redirect_stderr=False,
            )  # fmt: skip
            self._live.start()
        if kind in KEPT:
            style = _STYLE.get(kind, "")
            for line in kept:
                self._live.console.print(Text(line, style=style), soft_wrap=True)
        changed = phase != (self.progress.phase, [w.phase for w in self.progress.waves])
        now = time.monotonic()
        if changed or kind in KEPT or now - self._drawn >= 1.0 / FPS:
            self._drawn = now
            self._live.update(picture(self.progress), refresh=True)
        if kind in ("rollout.finished", "resume.finished"):
            self.close()

    def close(self) -> None:
        """Draw the last picture and stop (it stays on the screen)."""
        if self._live is not None:
            self._live.update(picture(self.progress), refresh=True)
            self._live.stop()
            self._live = None
