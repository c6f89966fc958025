"""Apply: settle what a crash cut short, plan, ask, lock, journal, roll out in waves.

    settle first (resume.py) -> prepare (read repo and boxes, plan; nothing written)
    -> show the plan -> confirm -> lock -> journal -> drive -> the result

A dry run stops after showing the plan (and what it would settle first): no lease,
no lock, no journal. One set of connections serves the whole command. SIGTERM and
SIGINT during a rollout start no new box and put back what the rollout changed (a
second signal changes nothing; kill -9 is safe too: the next apply settles). An
unexpected error inside the rollout does the same, its traceback kept in the state dir.
The CLI supplies an `ApplyView`: the progress reporter, and how to show and confirm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import JsonValue

from reconciler import __version__
from reconciler.app.report_diff import provenance
from reconciler.app.resume import ResumeRequest, preview, settle_first
from reconciler.app.state import StateDir, open_state, save_traceback, write_private
from reconciler.app.trace import BoundaryHook, Trace
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import Driver, IncidentWriter, RunResult
from reconciler.engine.resume import ResumeResult
from reconciler.engine.session import (
    ApplyRefused,
    Link,
    Prepared,
    Request,
    Source,
    execute,
    prepare,
)
from reconciler.journal.base import LockError
from reconciler.journal.liveness import HEARTBEAT_S, STALE_AFTER_S
from reconciler.metrics.source import MetricSource
from reconciler.report.html import render_html, report_data
from reconciler.report.incident import incident_doc, render_incident_json, render_incident_markdown
from reconciler.rollout.clock import Clock
from reconciler.rollout.commands import WriteIncident
from reconciler.rollout.reporter import Reporter
from reconciler.rollout.runrecord import RunRecord
from reconciler.secrets.redact import scrub

if TYPE_CHECKING:
    from reconciler.app.localworkers import LocalWorkers
    from reconciler.engine.workers import QueuedBoxes


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """What `reconcile apply` was asked."""

    repo: Path
    state_dir: Path | None = None
    dry_run: bool = False
    allow_dirty: bool = False
    allow_unreachable: bool = False
    force: bool = False
    plan_file: Path | None = None
    soak_s: float | None = None
    wait_lock_s: float | None = None
    boundary_hook: BoundaryHook | None = None
    # Box operations run by this many worker processes (reconciler/app/localworkers.py),
    # coordinated through the shared state (needs --state postgresql://…); 0: in this one.
    workers: int = 0
    # For tests only, never set by the CLI: the rollout's clock instead of the system's,
    # the command's connections instead of SSH and HTTP as fleet.yaml says, and the gates'
    # metric source instead of fleet.yaml's. tests/cli/test_progress_app.py runs apply()
    # in process with a FakeClock (reconciler/testing/clock.py), a fleet of FakeBoxes
    # (reconciler/transport/fake.py) behind a Link and samples that follow the fake clock,
    # so a 10-minute gate wait takes no real time. Gates, watchdog and leases stay on.
    clock: Clock | None = None
    link_factory: Callable[[Source], Link] | None = None
    metric_source: MetricSource | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """How apply ended: what it settled first, the rollout (None: none ran), the exit code."""

    exit_code: int
    settled: ResumeResult | None = None
    run: RunResult | None = None


class ApplyView(Protocol):
    """What the CLI supplies: progress, and how to show the plan and ask for consent."""

    @property
    def reporter(self) -> Reporter: ...

    def tell(self, line: str) -> None:
        """One line for the operator."""

    def settled(self, result: ResumeResult) -> None:
        """A cut-short rollout was settled first."""

    def show(self, p: Prepared, preview: list[str], state_dir: Path) -> None:
        """The plan (and, on a dry run, what would be settled first)."""

    def confirm(self, p: Prepared) -> None:
        """Go on, or raise an InputError (the operator said no, or cannot be asked)."""


def incident_writer(state_dir: Path, repo: Path | None = None) -> IncidentWriter:
    """Writes the incident report (markdown, JSON and HTML) to STATE_DIR/incidents/."""

    def write(run: RunRecord, cmd: WriteIncident) -> dict[str, str]:
        doc = incident_doc(run, cmd)
        base = state_dir / "incidents" / run.rollout_id
        md = write_private(base.with_suffix(".md"), scrub(render_incident_markdown(doc)))
        js = write_private(base.with_suffix(".json"), scrub(render_incident_json(doc)))
        page = report_data(
            run,
            trigger=cmd.trigger,
            restored=cmd.restored,
            restore_failed=cmd.restore_failed,
            diff=provenance(repo, run.plan, run.revision),
        )
        html = write_private(base.with_suffix(".html"), scrub(render_html(page)))
        return {"markdown": str(md), "json": str(js), "html": str(html)}

    return write


def write_rollout_report(
    state_dir: Path, run: RunRecord, repo: Path | None = None
) -> dict[str, str]:
    """The report of a rollout that finished without an incident: STATE_DIR/reports/ID.html
    (self-contained, charts inline) and .json (the same data)."""
    data = report_data(run, diff=provenance(repo, run.plan, run.revision))
    base = state_dir / "reports" / run.rollout_id
    js = write_private(base.with_suffix(".json"), json.dumps(data, indent=2) + "\n")
    html = write_private(base.with_suffix(".html"), render_html(data))
    return {"json": str(js), "html": str(html)}


async def apply(req: ApplyRequest, view: ApplyView, trace: Trace | None = None) -> ApplyResult:
    """Carry out one `reconcile apply` (see the module docstring)."""
    trace = trace or Trace()
    trace.state_dir = trace.state_dir or req.state_dir
    links: list[Link] = []

    def shared(source: Source) -> Link:
        if not links:
            links.append(req.link_factory(source) if req.link_factory else Link(source, req.repo))
        return links[0]

    settled = None
    if not req.dry_run:
        try:
            settled = await settle_first(
                ResumeRequest(req.repo, req.state_dir, wait_lock_s=req.wait_lock_s,
                              boundary_hook=req.boundary_hook),
                view.reporter, view.tell, explicit=False, link_factory=shared, trace=trace,
            )  # fmt: skip
        except BaseException:
            for link in links:
                await link.close()
            raise
        if settled is not None:
            view.settled(settled)
            head = links[0].head_revision if links else None
            if head is None or settled.stops_apply(head):
                for link in links:
                    await link.close()
                return ApplyResult(settled.exit_code, settled)
            view.tell("going on to the head")
    try:
        p = await prepare(_request(req, view.tell), shared)
    except BaseException:
        for link in links:
            await link.close()
        raise
    try:
        with open_state(p.source.repo.fleet, req.state_dir) as state:
            trace.state_dir = state.path
            lines = await preview(req.repo, req.state_dir, p.link, p.source) if req.dry_run else []
            view.show(p, lines, state.path)
            if p.plan.rules is not None:
                view.tell(_rules_line(p))
            if p.alertmanager is not None:
                when = "after the last wave" if p.plan.boxes else "alone (no agent changes)"
                view.tell(f"alertmanager.yml: ship {p.alertmanager.marker} {when}")
            if req.dry_run or not p.has_work:
                return ApplyResult(0, settled)
            if req.workers and state.url is None:
                raise ApplyRefused(
                    f"--workers {req.workers} needs the shared state the workers claim box "
                    "operations from: --state postgresql://USER@HOST:PORT/DATABASE or fleet.yaml "
                    "`state:` (docs/team.md); nothing was touched"
                )
            view.confirm(p)
            run = await run_locked(p, req, state, view, trace)
            if run.rules is not None:
                _tell_rules(view, run)
            return ApplyResult(run.exit_code, settled, run)
    finally:
        await p.link.close()


def _rules_line(p: Prepared) -> str:
    step = p.plan.rules
    if step is None:
        return "alert rules: unchanged"
    when = "after the last wave" if p.plan.boxes else "alone (no agent changes)"
    gone = f", removing {', '.join(step.removed)}" if step.removed else ""
    return f"alert rules: ship {len(step.files)} rule file(s) to {step.box} {when}{gone}"


def _tell_rules(view: ApplyView, run: RunResult) -> None:
    rules = run.rules
    if rules is None:
        return
    view.tell(rules.message)
    if rules.error is not None:
        who = "alertmanager" if rules.message.startswith("Alertmanager") else "prometheus"
        view.tell(f"{who} said: {scrub(rules.error)}")


def _request(req: ApplyRequest, tell: Callable[[str], None]) -> Request:
    return Request(
        repo=req.repo, allow_dirty=req.allow_dirty, allow_unreachable=req.allow_unreachable,
        force=req.force, plan_file=req.plan_file, soak_s=req.soak_s,
        wait_lease_s=req.wait_lock_s or 0.0, tell=tell, metric_source=req.metric_source,
    )  # fmt: skip


SIGNALS = (signal.SIGINT, signal.SIGTERM)


# The fleet lock's heartbeat: renewed this often while a rollout runs; a holder on another
# machine whose heartbeat is three periods old is dead (its lock expired). A holder on this
# machine whose process is gone (or whose pid was reused) is taken over at once
# (journal/takeover.py, journal/liveness.py).
RENEW_EVERY_S = HEARTBEAT_S
LOCK_TTL_S = STALE_AFTER_S


async def run_locked(
    p: Prepared, req: ApplyRequest, state: StateDir, view: ApplyView, trace: Trace
) -> RunResult:
    """Under the fleet lock (renewed as it runs): the rollout, signals handled."""
    fleet = p.source.repo.fleet
    ttl = LOCK_TTL_S
    # Not lock.wait in a thread: the lock's SQLite connection belongs to this one.
    lease, _ = await state.take_lock(fleet.fleet_id, ttl_s=ttl, wait_s=req.wait_lock_s,
                                     tell=view.tell)  # fmt: skip
    lock = state.lock
    current = {"lease": lease}

    async def renew() -> None:
        """Renew the fleet lock; lost (force-released, or taken over), the run stops
        starting boxes and puts back what it changed (exit 3), as on a SIGTERM."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                current["lease"] = lock.renew(current["lease"], ttl_s=ttl)
            except LockError as exc:
                if trace.driver is not None:
                    trace.driver.interrupt(
                        f"the fleet lock was lost ({exc}): no new box is started, what this "
                        "rollout changed is put back; check who holds the lock "
                        "(`reconcile unlock --help`)"
                    )
                return

    remote, local = _workers(req, state, view)

    def bind(rid: str) -> None:
        current["lease"] = lock.bind(current["lease"], rid)
        if local is not None:
            local.start(rid)

    def on_driver(d: Driver) -> None:
        trace.driver = d
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            reason = (
                f"interrupted by {sig.name}: no new box is started, what this rollout "
                "changed is put back (not a verdict on the change: the revision is not blocked)"
            )
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, d.interrupt, reason)

    def keep(rid: str, text: str) -> str:
        return save_traceback(state.path, rid, text)

    renewer = asyncio.create_task(renew())
    try:
        done = await execute(
            p, clock=req.clock or SystemClock(), reporter=view.reporter, journal=state.journal,
            write_incident=incident_writer(state.path, req.repo), on_driver=on_driver,
            on_rollout_id=bind, internal_error=keep, holder=state.holder_id,
            on_boundary=req.boundary_hook, remote=remote,
        )  # fmt: skip
        if not done.incident and trace.driver is not None:
            write_rollout_report(state.path, trace.driver.record, req.repo)
        return done
    finally:
        renewer.cancel()
        if remote is not None:
            mine = await local.stop() if local is not None else []
            here = {str(w.get("worker")) for w in mine} | (local.names() if local else set())
            elsewhere: list[JsonValue] = [  # workers on other machines (`reconcile worker`)
                {"worker": name, "boxes": n}
                for name, n in sorted(remote.ran_by.items())
                if name not in here
            ]
            workers: list[JsonValue] = list(mine)
            view.reporter.note(
                "workers.finished",
                {"workers": workers, "elsewhere": elsewhere, "coordinator_ran": remote.ran_here},
            )
            remote.queue.close()
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(sig)
        with contextlib.suppress(LockError):
            lock.release(current["lease"])


def _workers(
    req: ApplyRequest, state: StateDir, view: ApplyView
) -> tuple[QueuedBoxes | None, LocalWorkers | None]:
    """With --workers N: the coordinator's queue, and the N local workers to start once the
    rollout has its id (None, None without)."""
    if not req.workers or state.url is None:
        return None, None
    from reconciler.app.localworkers import LocalWorkers  # noqa: PLC0415 (psycopg only when asked)
    from reconciler.engine.workers import QueuedBoxes  # noqa: PLC0415 (psycopg only when asked)
    from reconciler.journal.pgwork import WorkQueue  # noqa: PLC0415 (psycopg only when asked)

    remote = QueuedBoxes(WorkQueue(state.url), version=__version__, holder=state.holder_id)
    local = LocalWorkers(req.workers, url=state.url, repo=req.repo.resolve(),
                         logs=state.path / "workers", tell=view.tell,
                         over=lambda: remote.retired)  # fmt: skip
    return remote, local
