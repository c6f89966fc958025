"""Rollout progress as the operator sees it: the driver's notes folded into waves and gates. Pure.

`Progress.fold(kind, fields)` takes one note (reconciler/rollout/reporter.py NOTE_KINDS,
plus resume's) and keeps: per wave its boxes applied / failed / restored of N and its
phase (applying, watchdog, soaking with the time left, gates, passed, failed); per gate
one `GateLine`: verdict, canary vs baseline vs threshold, samples, and in words why
(`gate_why`); the boxes that failed or were restored, each with its reason. The
terminal's live display (cli/progress.py) draws it; `progress_lines.py` turns the same
notes into compact lines for a log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# "too few samples: 41 of the 200 needed" (reconciler/gates/verdict.py)
_TOO_FEW = re.compile(r"too few (baseline )?samples: (\d+) of the (\d+) needed")


def num(x: object) -> str:
    """A figure in four significant digits; "-" when there is none."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return "-"
    return f"{x:.4g}"


def confidence_of(critical: float) -> str:
    """The one-sided confidence a critical z stands for ("95%")."""
    p = 0.5 * (1.0 + math.erf(critical / math.sqrt(2.0)))
    return f"{p * 100:.3g}%"


def _float(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def gate_why(f: Mapping[str, object]) -> str:
    """Why a gate figure came out as it did, in words.

    PASS: within the threshold, or above it but not significant (z < critical);
    FAIL: significant harm (z >= critical) or the engine's reason; undecided:
    "waiting: 41 of 200 samples" or the reason as the gate gave it.
    """
    outcome = str(f.get("outcome", "pass" if f.get("ok") else "fail"))
    reason = str(f.get("reason") or f.get("detail") or "")
    canary, threshold = _float(f.get("canary")), _float(f.get("threshold"))
    z, critical = _float(f.get("z")), _float(f.get("critical"))
    test = ""
    if z is not None and critical is not None:
        sign = "<" if z < critical else ">="
        test = f"z {z:.2f} {sign} {critical:.2f} at {confidence_of(critical)}"
    if outcome == "pass":
        if canary is not None and threshold is not None and canary > threshold:
            return f"above the threshold but not significant: {test or reason}"
        if canary is not None and threshold is not None:
            return "within the threshold"
        return reason or "passed"
    if outcome == "fail":
        return f"{reason}: {test}" if test else reason
    m = _TOO_FEW.search(reason)
    if m:
        whose = "baseline samples" if m.group(1) else "samples"
        return f"waiting: {m.group(2)} of {m.group(3)} {whose}"
    return f"waiting: {reason}" if reason else "waiting"


@dataclass(slots=True)
class GateLine:
    """One gate's latest figure for a wave."""

    gate: str
    verdict: str  # pass | fail | waiting | undecided; the watchdog's: ok | FAIL
    why: str
    canary: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    canary_samples: int | None = None
    baseline_samples: int | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "ok")

    @property
    def figures(self) -> str:
        """canary vs baseline vs threshold, and samples ("" for the watchdog)."""
        if self.canary_samples is None:
            return ""
        return (
            f"canary {num(self.canary)} baseline {num(self.baseline)} threshold "
            f"{num(self.threshold)} samples {self.canary_samples}/{self.baseline_samples}"
        )


def gate_line(f: Mapping[str, object], *, waiting: bool = False) -> GateLine:
    """The figure of one gate (a `figures` or `pending` item of a gates note)."""
    name = str(f.get("gate", "?"))
    if "outcome" not in f:  # the watchdog's figure: ok and a detail
        return GateLine(name, "ok" if f.get("ok") else "FAIL", str(f.get("detail", "")))
    verdict = "waiting" if waiting else str(f.get("outcome"))
    why = gate_why({**f, "outcome": "inconclusive"} if waiting else f)
    if verdict == "inconclusive":  # a verdict came (another gate failed) before this one's
        verdict, why = "undecided", why.replace("waiting", "undecided", 1)
    cs, bs = f.get("canary_samples"), f.get("baseline_samples")
    return GateLine(
        gate=name,
        verdict=verdict,
        why=why,
        canary=_float(f.get("canary")),
        baseline=_float(f.get("baseline")),
        threshold=_float(f.get("threshold")),
        canary_samples=cs if isinstance(cs, int) else 0,
        baseline_samples=bs if isinstance(bs, int) else 0,
    )


@dataclass(slots=True)
class WaveProgress:
    """One wave: counts of its N boxes, its phase, its gates."""

    number: int  # 1-based
    agents: tuple[str, ...]
    applied: int = 0
    failed: int = 0
    restored: int = 0
    restore_failed: int = 0
    watched: int = 0
    phase: str = "waiting"  # waiting applying watchdog soaking gates passed failed
    soak_left: float | None = None
    waited_s: float | None = None
    limit_s: float | None = None
    gates: dict[str, GateLine] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.agents)

    @property
    def done(self) -> int:
        """Boxes whose apply ended, either way."""
        return self.applied + self.failed


@dataclass(frozen=True, slots=True)
class BoxEvent:
    """A box that failed, or was restored (or not), with the reason."""

    agent: str
    wave: int | None
    what: str  # "failed at reload", "watchdog: stalled", "restored", "not restored", ...
    reason: str = ""


@dataclass
class Progress:
    """Everything the operator is shown about one rollout (or resume), from its notes."""

    rollout_id: str = ""
    revision: str = ""
    boxes: int = 0
    waves: list[WaveProgress] = field(default_factory=list)
    phase: str = "starting"
    trigger: str = ""
    outcome: str = ""
    exit_code: int | None = None
    left_behind: list[str] = field(default_factory=list)
    events: list[BoxEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incident: dict[str, str] = field(default_factory=dict)
    resume: str = ""  # what a resume is doing (resume.started), in words
    _wave_of: dict[str, int] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------

    def wave(self, number: object) -> WaveProgress | None:
        """Wave `number` (1-based), if the rollout has it."""
        if (
            isinstance(number, int)
            and not isinstance(number, bool)
            and 1 <= number <= len(self.waves)
        ):
            return self.waves[number - 1]
        return None

    def wave_of(self, agent: str) -> WaveProgress | None:
        return self.wave(self._wave_of.get(agent))

    @property
    def current(self) -> WaveProgress | None:
        """The wave being worked on (the last one begun)."""
        begun = [w for w in self.waves if w.phase != "waiting"]
        return begun[-1] if begun else None

    @property
    def restored(self) -> int:
        return sum(1 for e in self.events if e.what == "restored")

    def headline(self) -> str:
        """Where the rollout stands, in a few words."""
        if self.outcome:
            return f"{self.outcome} (exit {self.exit_code})"
        if self.phase == "rolling back":
            return f"rolling back: {self.restored} box(es) restored"
        w = self.current
        if w is None:
            return self.phase
        return f"wave {w.number}/{len(self.waves)}: {phase_words(w)}"

    # -- folding ---------------------------------------------------------------------------

    def fold(self, kind: str, f: Mapping[str, object]) -> None:
        """Take one note into the picture."""
        handler = _FOLD.get(kind)
        if handler is not None:
            handler(self, f)

    def _started(self, f: Mapping[str, object]) -> None:
        self.rollout_id = str(f.get("rollout_id", ""))
        self.revision = str(f.get("revision", ""))
        boxes = f.get("boxes")
        self.boxes = boxes if isinstance(boxes, int) else 0
        waves = f.get("waves")
        self.waves = []
        for i, agents in enumerate(waves if isinstance(waves, list) else [], start=1):
            names = tuple(str(a) for a in agents) if isinstance(agents, list) else ()
            self.waves.append(WaveProgress(i, names))
            self._wave_of.update((a, i) for a in names)
        self.phase = "preflight"

    def _wave_started(self, f: Mapping[str, object]) -> None:
        w = self.wave(f.get("wave"))
        if w is not None:
            w.phase = "applying"
            self.phase = "applying"

    def _applied(self, f: Mapping[str, object]) -> None:
        w = self.wave(f.get("wave")) or self.wave_of(str(f.get("agent")))
        if w is not None:
            w.applied += 1
            if w.done >= w.size and w.phase == "applying":
                w.phase = "watchdog"

    def _failed(self, f: Mapping[str, object]) -> None:
        agent = str(f.get("agent"))
        w = self.wave(f.get("wave")) or self.wave_of(agent)
        if w is not None:
            w.failed += 1
        at = f"failed at {f.get('step')}" if f.get("step") else "failed"
        self.events.append(BoxEvent(agent, w.number if w else None, at, str(f.get("reason", ""))))

    def _watch_passed(self, f: Mapping[str, object]) -> None:
        w = self.wave_of(str(f.get("agent")))
        if w is not None:
            w.watched += 1

    def _watch_failed(self, f: Mapping[str, object], what: str = "watchdog") -> None:
        agent = str(f.get("agent"))
        w = self.wave_of(agent)
        verdict = f.get("verdict")
        label = f"{what}: {verdict}" if verdict else what
        self.events.append(
            BoxEvent(agent, w.number if w else None, label, str(f.get("reason", "")))
        )

    def _soak_tick(self, f: Mapping[str, object]) -> None:
        w = self.wave(f.get("wave"))
        if w is not None:
            w.phase = "soaking"
            w.soak_left = _float(f.get("remaining_s"))
            self.phase = "soaking"

    def _soak_problem(self, f: Mapping[str, object]) -> None:
        self._watch_failed(f, "soak")

    def _gates_waiting(self, f: Mapping[str, object]) -> None:
        w = self.wave(f.get("wave"))
        if w is None:
            return
        w.phase, w.soak_left = "gates", None
        w.waited_s, w.limit_s = _float(f.get("waited_s")), _float(f.get("limit_s"))
        pending = f.get("pending")
        for p in pending if isinstance(pending, list) else []:
            if isinstance(p, dict):
                line = gate_line(p, waiting=True)
                w.gates[line.gate] = line
        self.phase = "gates"

    def _gates_done(self, f: Mapping[str, object], passed: bool) -> None:
        w = self.wave(f.get("wave"))
        if w is None:
            return
        w.phase, w.soak_left = ("passed" if passed else "failed"), None
        figures = f.get("figures")
        gates = {}  # in the verdict's order
        for p in figures if isinstance(figures, list) else []:
            if isinstance(p, dict):
                line = gate_line(p)
                gates[line.gate] = line
        w.gates = {**gates, **{k: v for k, v in w.gates.items() if k not in gates}}

    def _rollback(self, f: Mapping[str, object]) -> None:
        self.phase = "rolling back"
        self.trigger = str(f.get("trigger") or self.trigger)

    def _restored(self, f: Mapping[str, object]) -> None:
        agent = str(f.get("agent"))
        w = self.wave_of(agent)
        if w is not None:
            w.restored += 1
        self.events.append(BoxEvent(agent, w.number if w else None, "restored"))

    def _restore_failed(self, f: Mapping[str, object]) -> None:
        agent = str(f.get("agent"))
        w = self.wave_of(agent)
        if w is not None:
            w.restore_failed += 1
        reason = str(f.get("reason", ""))
        self.events.append(BoxEvent(agent, w.number if w else None, "NOT restored", reason))

    def _finished(self, f: Mapping[str, object]) -> None:
        self.outcome = str(f.get("outcome", ""))
        code = f.get("exit_code")
        self.exit_code = code if isinstance(code, int) else None
        left = f.get("left_behind")
        self.left_behind = [str(a) for a in left] if isinstance(left, list) else []
        self.phase = "finished"

    def _warning(self, f: Mapping[str, object]) -> None:
        message = str(f.get("message", ""))
        if message not in self.warnings:
            self.warnings.append(message)

    def _incident(self, f: Mapping[str, object]) -> None:
        self.incident = {str(k): str(v) for k, v in f.items()}

    def _resume_started(self, f: Mapping[str, object]) -> None:
        self.rollout_id = str(f.get("rollout_id", ""))
        self.phase = "resuming"
        self.resume = resume_words(f)

    def _resume_finished(self, f: Mapping[str, object]) -> None:
        self.outcome = str(f.get("outcome", ""))
        self.phase = "finished"


def phase_words(w: WaveProgress) -> str:
    """A wave's phase in words: "soaking, 3s left", "gates: waited 41s of 600s"."""
    if w.phase == "soaking" and w.soak_left is not None:
        return f"soaking, {w.soak_left:.0f}s left"
    if w.phase == "gates" and w.waited_s is not None:
        return f"gates undecided, waited {w.waited_s:g}s of {num(w.limit_s)}s"
    if w.phase == "applying":
        return f"applying, {w.done}/{w.size}"
    if w.phase == "watchdog":
        return f"watchdog, {w.watched}/{w.applied} passed"
    return w.phase


def resume_words(f: Mapping[str, object]) -> str:
    """resume.started in words: the rollout, where it was found, the mode, box actions."""
    boxes = f.get("boxes")
    counts: dict[str, int] = {}
    for action in boxes.values() if isinstance(boxes, dict) else []:
        counts[str(action)] = counts.get(str(action), 0) + 1
    actions = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no box"
    return (
        f"rollout {f.get('rollout_id')} (found from the {f.get('source')}): "
        f"{f.get('mode')}; {actions}"
    )


_FOLD: dict[str, Callable[[Progress, Mapping[str, object]], None]] = {
    "rollout.started": Progress._started,
    "preflight.passed": lambda p, f: setattr(p, "phase", "applying"),
    "preflight.failed": lambda p, f: setattr(p, "phase", "preflight failed"),
    "wave.started": Progress._wave_started,
    "box.applied": Progress._applied,
    "box.failed": Progress._failed,
    "watchdog.passed": Progress._watch_passed,
    "watchdog.failed": Progress._watch_failed,
    "soak.tick": Progress._soak_tick,
    "soak.problem": Progress._soak_problem,
    "gates.waiting": Progress._gates_waiting,
    "gates.passed": lambda p, f: p._gates_done(f, passed=True),
    "gates.failed": lambda p, f: p._gates_done(f, passed=False),
    "rollback.started": Progress._rollback,
    "box.restored": Progress._restored,
    "box.restore_failed": Progress._restore_failed,
    "rollout.finished": Progress._finished,
    "warning": Progress._warning,
    "internal.error": Progress._warning,
    "incident.written": Progress._incident,
    "resume.started": Progress._resume_started,
    "resume.finished": Progress._resume_finished,
}
