"""How the commands show progress: the Reporters, the plan, the settle and rollout summaries.

Progress goes to stderr (rich), or as JSON lines to stdout with --format json; the
plan is data and goes to stdout. Nothing here decides anything: the app does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

import typer

from reconciler.cli.common import Format, err, err_console, out
from reconciler.errors import Refused

if TYPE_CHECKING:  # the engine is loaded by the command that runs, not by every command
    from reconciler.engine.driver import RunResult
    from reconciler.engine.resume import ResumeResult
    from reconciler.engine.session import Prepared
    from reconciler.rollout.reporter import JsonValue


class LineReporter:
    """No terminal (CI, a pipe): one compact line per phase change on stderr
    (reconciler/report/progress_lines.py); `stream` for tests (default: sys.stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from reconciler.report.progress_lines import ProgressLines

        self.lines = ProgressLines()
        self._stream = stream

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        stream = self._stream or sys.stderr
        for line in self.lines.lines(kind, fields):
            stream.write(line + "\n")
        stream.flush()

    def close(self) -> None:
        return None


class JsonReporter:
    """One JSON object per line on stdout, for CI logs."""

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        sys.stdout.write(json.dumps({"event": kind, **fields}) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        return None


class Screen(Protocol):
    """A Reporter the command closes when it is done (a live display stops)."""

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None: ...

    def close(self) -> None: ...


def on_terminal() -> bool:
    """stderr is a terminal that can redraw (not TERM=dumb): the live display."""
    con = err_console()
    return con.is_terminal and not con.is_dumb_terminal


def reporter_for(fmt: Format) -> Screen:
    """JSON lines on stdout for --format json; a live display on a terminal; else lines."""
    if fmt is Format.json:
        return JsonReporter()
    if on_terminal():
        from reconciler.cli.live import LiveReporter

        return LiveReporter(err_console())
    return LineReporter()


def tell(line: str) -> None:
    """One plain line for the operator, on stderr."""
    err.print(line, markup=False)


def show_plan(p: Prepared, fmt: Format) -> None:
    """The exact plan: waves, agents in each, their changes, gates; orphans and left-out boxes."""
    from reconciler.plan.model import Delivery

    plan = p.plan
    if fmt is Format.json:
        out.print(plan.to_json(), end="", markup=False, highlight=False)
        return
    out.print(
        f"plan {plan.plan_id[:12]}  fleet {plan.fleet_id}  revision {plan.target_revision}",
        markup=False,
    )
    if plan.empty:
        out.print("nothing to change: every box runs this revision", markup=False)
    budget = plan.failure_budget
    out.print(f"{len(plan.boxes)} box(es) change; failure budget {budget}", markup=False)
    window = p.source.repo.fleet.rollout.stall_window_s
    for wave in plan.waves:
        if wave.gates:
            checks = f"soak {wave.soak_s:g}s, checks: watchdog, gates {', '.join(wave.gates)}"
        else:
            why = (
                "restored from the boxes' history"
                if all(plan.box(a).delivery is Delivery.RESTORE for a in wave.agents)
                else "none configured"
            )
            checks = (
                f"soak {wave.soak_s:g}s, checks: watchdog (up to a {window:g}s stall window), "
                f"no metric gates ({why})"
            )
        out.print(f"wave {wave.index + 1}: {len(wave.agents)} agent(s), {checks}", markup=False)
        for agent in wave.agents:
            step = plan.box(agent)
            fields = ", ".join(
                p.dotted + (" [restart]" if p.restart_required else "")
                + (" [cost]" if p.cost_impacting else "")
                for p in step.paths
            ) or "(bytes only)"  # fmt: skip
            adopt = " (adopt: no stamp)" if step.adopt else ""
            if step.secrets:
                fields = "secrets file" if fields == "(bytes only)" else f"{fields}, secrets file"
            fields += f"; {step.move_text}" if step.moved else ""
            out.print(f"  {agent}: {step.label}{adopt}: {fields}", markup=False)
    for name, why in sorted(p.left_out.items()):
        out.print(f"left out (--allow-unreachable): {name}: {why}", markup=False)
    for o in p.orphans:
        out.print(
            f"orphan (left alone): {o.agent} on {o.host}:{o.port} ({o.stamp_path})", markup=False
        )


def tell_settings(p: Prepared, state_dir: Path) -> None:
    """What a real run would use: key, known_hosts, state dir (on stderr)."""
    conn = p.source.repo.fleet.connection
    tell(
        f"would use: SSH key {conn.key or '(ssh defaults)'}, known_hosts "
        f"{conn.known_hosts or '~/.ssh/known_hosts'}, state dir {state_dir}"
    )


def settled(result: ResumeResult | None) -> None:
    """One line per box that needs a human, then the outcome of a resume."""
    if result is None:
        tell("nothing to resume: no rollout was cut short")
        return
    for agent, why in sorted(result.failed.items()):
        err.print(f"{agent}: not put back: {why}", style="bold red", markup=False)
    how = "rolled back" if result.rolled_back else "settled"
    outcome = str(result.outcome)
    also = "" if outcome.replace("-", " ") == how else f" ({outcome})"  # not said twice
    tell(
        f"rollout {result.rollout_id} (found from the {result.source}): {how}, "
        f"{len(result.restored)} box(es) restored{also}"
    )


def summary(result: RunResult) -> None:
    """How a rollout ended: internal errors, incident reports, boxes that need a human."""
    from reconciler.rollout.phases import Outcome
    from reconciler.rollout.state import BoxStatus

    for line in result.internal_errors:
        err.print(f"error: {line}", markup=False, style="bold red")
    if result.outcome is Outcome.ABORTED:
        tell(f"nothing changed: {result.state.trigger or 'stopped before any box was written'}")
    for kind, path in result.incident.items():
        tell(f"incident report ({kind}): {path}")
    restore_failed = result.state.agents_in(BoxStatus.RESTORE_FAILED)
    if restore_failed:
        err.print(
            f"ROLLBACK FAILED on {', '.join(restore_failed)}: these boxes need a human now",
            style="bold red reverse",
            markup=False,
        )
    tell(f"rollout {result.rollout_id}: {result.outcome}")


class ApplyScreen:
    """The CLI's `ApplyView`: progress, the plan, and the operator's consent."""

    def __init__(self, fmt: Format, *, dry_run: bool, yes: bool) -> None:
        self.fmt, self.dry_run, self.yes = fmt, dry_run, yes
        self.reporter: Screen = reporter_for(fmt)

    def close(self) -> None:
        """Stop the live display (its last picture stays on the screen)."""
        self.reporter.close()

    def tell(self, line: str) -> None:
        tell(line)

    def settled(self, result: ResumeResult) -> None:
        settled(result)

    def show(self, p: Prepared, preview: list[str], state_dir: Path) -> None:
        for line in preview:
            tell(line)
        if self.fmt is Format.json and not self.dry_run:
            # JSON lines only on stdout: the plan first, as one line, then the events
            doc = {"event": "plan", "plan": json.loads(p.plan.to_json())}
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
        else:
            show_plan(p, self.fmt if self.fmt is Format.json else Format.text)
        if self.dry_run:
            tell_settings(p, state_dir)

    def confirm(self, p: Prepared) -> None:
        if self.yes:
            return
        if not sys.stdin.isatty():
            raise Refused(
                "no terminal to ask for confirmation; review the plan and pass --yes to apply it"
            )
        question = f"apply plan {p.plan.plan_id[:12]} to {len(p.plan.boxes)} box(es)?"
        if not typer.confirm(question, err=True):
            raise Refused("not applied: the operator said no")
