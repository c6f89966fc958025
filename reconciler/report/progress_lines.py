"""Rollout progress for a log (no terminal: CI): one compact line per phase change. Pure.

`ProgressLines.lines(kind, fields)` folds the note into a `Progress` and returns the
lines it adds, often none: a wave says when it starts, when its boxes are applied,
when it starts to soak (no countdown) and its gates' verdict with one line per gate;
an undecided gate says so when what it waits for changes, and at most once a minute
of waiting otherwise; every failed or restored box gets its own line with the reason
verbatim. Nothing is repeated, no Python repr is printed, and no line is longer than
`WIDTH` (a longer one goes on in indented continuation lines, its words kept whole).
Each line starts with the note kind it stands for, so a log can be grepped.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping

from reconciler.report.progress import GateLine, Progress, WaveProgress, num

WIDTH = 160
TAG = 18  # the kind column
WAIT_EVERY_S = 60.0  # an unchanged wait for the gates is told at most this often


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """`line` in pieces of at most `width` characters, continuations indented."""
    if len(line) <= width:
        return [line]
    return textwrap.wrap(
        line, width=width, subsequent_indent=" " * (TAG + 2), break_long_words=True,
        break_on_hyphens=False, drop_whitespace=True,
    )  # fmt: skip


# Counted into the wave's lines, never a line of their own.
SILENT = frozenset({"watchdog.passed"})


def plain(fields: Mapping[str, object]) -> str:
    """Fields as `key value` pairs; lists joined by commas, dicts as `k v` (no reprs)."""

    def one(v: object) -> str:
        if isinstance(v, list | tuple):
            return ", ".join(one(x) for x in v)
        if isinstance(v, dict):
            return ", ".join(f"{k} {one(x)}" for k, x in v.items())
        return str(v)

    return "; ".join(f"{k} {one(v)}" for k, v in fields.items())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("x") else f"{n} {word}s"


def gate_text(g: GateLine) -> str:
    """One gate: name, verdict, figures, why."""
    verdict = g.verdict.upper() if g.verdict in ("pass", "fail") else g.verdict
    parts = [f"{g.gate} {verdict}"]
    if g.figures:
        parts.append(g.figures)
    return f"{' '.join(parts)}: {g.why}" if g.why else " ".join(parts)


def _waiting_key(w: WaveProgress) -> tuple[tuple[str, str], ...]:
    """What an undecided wave waits for, numbers left out (they change every poll)."""
    return tuple(
        sorted((g.gate, re.sub(r"\d+(\.\d+)?", "#", g.why)) for g in w.gates.values()
               if g.verdict == "waiting")
    )  # fmt: skip


class ProgressLines:
    """Notes in, log lines out (see the module docstring)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.progress = Progress()
        self._told: set[str] = set()  # lines (and one-off keys) already printed
        self._waiting: dict[int, tuple[tuple[tuple[str, str], ...], float]] = {}

    def _tag(self, kind: str, text: str) -> list[str]:
        return wrap(f"{kind:<{TAG}} {text}".rstrip())

    def _once(self, key: str, lines: list[str]) -> list[str]:
        if key in self._told:
            return []
        self._told.add(key)
        return lines

    def _wave(self, w: WaveProgress) -> str:
        return f"wave {w.number}/{len(self.progress.waves)}"

    def lines(self, kind: str, fields: Mapping[str, object]) -> list[str]:
        """Fold the note in; the lines it adds (maybe none)."""
        if kind in ("rollout.started", "resume.started"):  # one command may run several
            self._reset()
        p = self.progress
        before = p.wave(fields.get("wave")) or p.wave_of(str(fields.get("agent", "")))
        phase_before = before.phase if before else None
        p.fold(kind, fields)
        w = p.wave(fields.get("wave")) or p.wave_of(str(fields.get("agent", "")))
        if kind in SILENT:
            return []
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is None:  # a kind this module does not know yet: its fields, plainly
            return self._once(f"{kind} {fields}", self._tag(kind, plain(fields)))
        out: list[str] = handler(fields, w, phase_before)
        return out

    # -- one method per note kind that prints (kinds not named here print nothing) -------------

    def _rollout_started(self, f: Mapping[str, object], *_: object) -> list[str]:
        p = self.progress
        text = (
            f"{p.rollout_id}: {_plural(p.boxes, 'box')} in {_plural(len(p.waves), 'wave')}, "
            f"revision {p.revision}"
        )
        return self._tag("rollout.started", text)

    def _preflight_passed(self, *_: object) -> list[str]:
        return self._tag("preflight.passed", "every box of the plan is reachable and ready")

    def _preflight_failed(self, f: Mapping[str, object], *_: object) -> list[str]:
        return self._tag("preflight.failed", f"nothing was written: {f.get('reason')}")

    def _wave_started(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        if w is None:
            return []
        return self._once(
            f"wave.started {w.number}",
            self._tag("wave.started", f"{self._wave(w)}: applying {_plural(w.size, 'box')}"),
        )

    def _box_applied(self, f: Mapping[str, object], w: WaveProgress | None, _: object) -> list[str]:
        if w is None or w.done < w.size:
            return []
        return self._applied_line(w)

    def _applied_line(self, w: WaveProgress) -> list[str]:
        failed = f", {w.failed} failed" if w.failed else ""
        return self._once(
            f"wave.applied {w.number}",
            self._tag("wave.applied", f"{self._wave(w)}: {w.applied}/{w.size} applied{failed}"),
        )

    def _box_failed(self, f: Mapping[str, object], w: WaveProgress | None, _: object) -> list[str]:
        where = f"{self._wave(w)} " if w else ""
        out = self._tag(
            "box.failed", f"{where}{f.get('agent')}: failed at {f.get('step')}: {f.get('reason')}"
        )
        if w is not None and w.done >= w.size:
            out += self._applied_line(w)
        return out

    def _watchdog_failed(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        where = f"{self._wave(w)} " if w else ""
        text = f"{where}{f.get('agent')}: {f.get('verdict')}: {f.get('reason')}"
        return self._tag("watchdog.failed", text)

    def _soak_problem(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        where = f"{self._wave(w)} " if w else ""
        return self._tag(
            "soak.problem", f"{where}{f.get('agent')}: {f.get('verdict')}: {f.get('reason')}"
        )

    def _soak_tick(self, f: Mapping[str, object], w: WaveProgress | None, _: object) -> list[str]:
        if w is None:
            return []
        left = f" {num(w.soak_left)}s" if w.soak_left is not None else ""
        text = f"{self._wave(w)}: watchdog passed {w.watched}/{w.applied}; soaking{left}"
        return self._once(f"soak {w.number}", self._tag("soak.started", text))

    def _gates_waiting(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        if w is None:
            return []
        key = _waiting_key(w)
        waited = w.waited_s or 0.0
        last = self._waiting.get(w.number)
        if last is not None and last[0] == key and waited - last[1] < WAIT_EVERY_S:
            return []
        self._waiting[w.number] = (key, waited)
        pending = [g for g in w.gates.values() if g.verdict == "waiting"]
        same: dict[str, list[str]] = {}  # gates waiting for the same thing, told once
        for g in pending:
            same.setdefault(g.why, []).append(g.gate)
        whys = "; ".join(f"{', '.join(names)} {why}" for why, names in same.items())
        text = (
            f"{self._wave(w)}: {_plural(len(pending), 'gate')} undecided after {waited:g}s of "
            f"{num(w.limit_s)}s: {whys}"
        )
        return self._tag("gates.waiting", text)

    def _gates_passed(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        return self._verdict("gates.passed", w)

    def _gates_failed(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        return self._verdict("gates.failed", w)

    def _verdict(self, kind: str, w: WaveProgress | None) -> list[str]:
        if w is None:
            return []
        gates = list(w.gates.values())
        ok = sum(1 for g in gates if g.ok)
        out = self._tag(kind, f"{self._wave(w)}: {ok} of {_plural(len(gates), 'check')} passed")
        for g in gates:
            out += wrap(f"  {gate_text(g)}")
        return out

    def _rollback_started(self, f: Mapping[str, object], *_: object) -> list[str]:
        text = str(f.get("trigger") or "rolling back")
        if f.get("blocked"):
            text += f" (revision {f.get('blocked')} is blocked)"
        return self._once(f"rollback {text}", self._tag("rollback.started", text))

    def _box_restored(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        where = f"{self._wave(w)} " if w else ""
        return self._tag("box.restored", f"{where}{f.get('agent')}: runs its old config again")

    def _box_restore_failed(
        self, f: Mapping[str, object], w: WaveProgress | None, _: object
    ) -> list[str]:
        where = f"{self._wave(w)} " if w else ""
        return self._tag(
            "box.restore_failed", f"{where}{f.get('agent')}: NOT restored: {f.get('reason')}"
        )

    def _box_moved(self, f: Mapping[str, object], *_: object) -> list[str]:
        rest = ", ".join(f"{k} {v}" for k, v in f.items() if k not in ("agent", "old", "new"))
        text = f"{f.get('agent')}: {f.get('old')} -> {f.get('new')}" + (f"; {rest}" if rest else "")
        return self._tag("box.moved", text)

    def _warning(self, f: Mapping[str, object], *_: object) -> list[str]:
        message = str(f.get("message", ""))
        return self._once(f"warning {message}", self._tag("warning", message))

    def _internal_error(self, f: Mapping[str, object], *_: object) -> list[str]:
        message = str(f.get("message", ""))
        return self._once(f"internal {message}", self._tag("internal.error", message))

    def _gates_retry(self, f: Mapping[str, object], *_: object) -> list[str]:
        text = f"{f.get('what')} (try {f.get('attempt')}): {f.get('error')}"
        return self._tag("gates.retry", text)

    def _incident_written(self, f: Mapping[str, object], *_: object) -> list[str]:
        return self._tag("incident.written", ", ".join(str(v) for v in f.values()))

    def _rollout_finished(self, f: Mapping[str, object], *_: object) -> list[str]:
        p = self.progress
        left = f"; left behind: {', '.join(p.left_behind)}" if p.left_behind else ""
        return self._tag("rollout.finished", f"{p.outcome} (exit {p.exit_code}){left}")

    def _workers_finished(self, f: Mapping[str, object], *_: object) -> list[str]:
        workers = f.get("workers")
        each = [w for w in workers if isinstance(w, Mapping)] if isinstance(workers, list) else []
        noun = "worker process" if len(each) == 1 else "worker processes"
        ran = f.get("coordinator_ran")
        itself = (
            f"; the coordinator ran {ran} box operation(s) itself (no worker claimed them in"
            " time: are the workers running, and on this revision?)"
            if isinstance(ran, int) and ran
            else ""
        )
        others = f.get("elsewhere")
        away = [w for w in others if isinstance(w, Mapping)] if isinstance(others, list) else []
        also = f" here, {len(away)} elsewhere" if away else ""
        lines = self._tag("workers.finished", f"{len(each)} {noun}{also}{itself}")
        for w in away:
            lines.append(f"  {w.get('worker')}: {w.get('boxes')} box operation(s)")
        for w in each:
            extra = [f"{w.get(k)} {k}" for k in ("reassigned", "lost") if w.get(k)]
            code = w.get("exit_code")
            lines.append(
                f"  pid {w.get('pid')}: {w.get('boxes')} box operation(s), {w.get('cpu_s')} s CPU"
                + (f", {', '.join(str(e) for e in extra)}" if extra else "")
                + (f", exit {code}" if code else "")
            )
        return lines

    def _resume_started(self, f: Mapping[str, object], *_: object) -> list[str]:
        return self._tag("resume.started", self.progress.resume)

    def _resume_finished(self, f: Mapping[str, object], *_: object) -> list[str]:
        failed = f.get("failed")
        names = ", ".join(str(a) for a in failed) if isinstance(failed, list) else ""
        text = f"{f.get('outcome')}: {f.get('restored')} box(es) restored"
        return self._tag("resume.finished", text + (f"; NOT put back: {names}" if names else ""))
