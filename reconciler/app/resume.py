"""Resume: settle or roll back the rollout a crash or a signal cut short (docs/resume.md).

Under the fleet lock (a dead holder's lock is taken over), find the rollout a crash
cut short, read its boxes, and finish or roll back by the fleet's `rollout.on_resume`
policy (or the request's). `apply` runs the same step first (`settle_first`), on its
own connections, and `preview` says in words what it would settle (a dry run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.app.state import Tell, open_state
from reconciler.app.trace import BoundaryHook, Trace
from reconciler.engine.clock import SystemClock
from reconciler.engine.resume import ResumeOptions, ResumeResult, find_unfinished, resume_fleet
from reconciler.engine.session import Link, Request, Source, box_timeout, read_source
from reconciler.journal.base import Journal
from reconciler.rollout.phases import Outcome
from reconciler.rollout.recovery import Action, Mode
from reconciler.rollout.reporter import Reporter
from reconciler.secretstore import fleet_key

POLICIES = ("settle", "finish", "rollback")


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """What `reconcile resume` was asked: the repo, the state dir, how to settle."""

    repo: Path
    state_dir: Path | None = None
    policy: str | None = None  # settle, finish or rollback; None: fleet.yaml rollout.on_resume
    break_leases: bool = False
    wait_lock_s: float | None = None
    boundary_hook: BoundaryHook | None = None


@dataclass(frozen=True, slots=True)
class ResumeResponse:
    """How the resume ended; `result` None: no rollout was cut short."""

    result: ResumeResult | None

    @property
    def exit_code(self) -> int:
        r = self.result
        if r is None or r.outcome is Outcome.ABORTED:
            return 0
        return r.exit_code


async def settle_first(
    req: ResumeRequest,
    reporter: Reporter,
    tell: Tell,
    *,
    explicit: bool,
    link_factory: Callable[[Source], Link] | None = None,
    trace: Trace | None = None,
) -> ResumeResult | None:
    """Resume the fleet's unfinished rollout, if there is one; None when there is none.

    With `link_factory` the caller owns the connections (apply reuses them to plan).
    """
    source = read_source(Request(repo=req.repo, allow_dirty=True))
    fleet = source.repo.fleet
    with open_state(fleet, req.state_dir) as state:
        if trace is not None:
            trace.state_dir = state.path
        lease, broken = await state.take_lock(
            fleet.fleet_id, ttl_s=fleet.rollout.lease_ttl_s, wait_s=req.wait_lock_s, tell=tell
        )
        if broken is not None:
            tell(f"took over the lock of a dead run: {broken.describe()}")
        if state.url is not None:  # a dead coordinator's workers finish their boxes first
            from reconciler.app.orphanwork import let_workers_finish  # noqa: PLC0415 (psycopg only when asked)

            await let_workers_finish(state.url, fleet.fleet_id, wait_s=box_timeout(source.repo),
                                     tell=tell)  # fmt: skip
        link = link_factory(source) if link_factory else Link(source, req.repo)
        opts = ResumeOptions(
            fleet_id=fleet.fleet_id,
            holder=state.holder_id,
            policy=Mode(req.policy or fleet.rollout.on_resume),
            break_leases=req.break_leases,
            parallel=fleet.connection.concurrency,
            history_keep=fleet.rollout.history_keep,
            verify_timeout_s=fleet.rollout.verify_timeout_s,
            lease_ttl_s=fleet.rollout.lease_ttl_s,
            box_timeout_s=box_timeout(source.repo),
            fleet_key=fleet_key(fleet, req.repo),  # names the kept previous secrets (HMAC)
        )
        try:
            return await resume_fleet(
                source, link, state.journal, opts, clock=SystemClock(), reporter=reporter,
                explicit=explicit, on_boundary=req.boundary_hook,
            )  # fmt: skip
        finally:
            if link_factory is None:
                await link.close()
            state.lock.release(lease)


async def resume(req: ResumeRequest, reporter: Reporter, tell: Tell) -> ResumeResponse:
    """`reconcile resume`: settle the cut-short rollout (looking at the boxes too)."""
    return ResumeResponse(await settle_first(req, reporter, tell, explicit=True))


async def preview(repo: Path, state_dir: Path | None, link: Link, source: Source) -> list[str]:
    """What `apply` would settle first, in words (`--dry-run`); nothing is written.

    Reads the journal only when it exists (a dry run creates no state), then the boxes.
    """
    fleet = source.repo.fleet
    with open_state(fleet, state_dir) as state:
        journal: Journal | None = state.existing_journal()
        found = await find_unfinished(
            source, link, journal, parallel=fleet.connection.concurrency, explicit=False
        )
    if found is None:
        return []
    u = found.unfinished
    mode, actions = found.preview(Mode(fleet.rollout.on_resume))
    count = {a: sum(1 for x in actions.values() if x is a) for a in Action}
    how = (
        "roll it back (a failed gate or watchdog had judged it; its revision stays blocked)"
        if u.verdict
        else f"{mode} it (rollout.on_resume)"
    )
    lines = [
        f"rollout {u.rollout_id} was cut short ({'; '.join(u.evidence[:3])})",
        f"apply will first {how}: {count[Action.RESTORE]} box(es) put back, "
        f"{count[Action.KEEP_NEW]} kept on its target, {count[Action.KEEP_OLD]} already on "
        f"their old config, {count[Action.UNREACHABLE] + count[Action.NO_RESTORE]} for a human",
    ]
    if mode is not Mode.ROLLBACK:
        lines.append(
            "then it goes on to the head with the plan below (made from the boxes "
            "as they are now: the put-back boxes are in it again)"
        )
    return lines
