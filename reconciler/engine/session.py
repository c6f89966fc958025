"""One `reconcile apply`, put together: source, live state, plan, secrets, targets, driver.

The CLI stays thin: it parses options, asks `prepare()` for a `Prepared`
(nothing written anywhere: no lease, no lock, no journal), shows the plan,
asks, and then calls `execute()`. Tests call the same two functions in
process against a demo fleet. Every refusal before a write is an
`ApplyRefused` whose message names the box or file and says what to do
(exit 1).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.alerts import compile_alerts
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.engine import alertmanager as am
from reconciler.engine.boxops import BoxHandle
from reconciler.engine.driver import (
    Driver,
    IncidentWriter,
    InternalErrorSink,
    Options,
    RunResult,
    Target,
)
from reconciler.engine.gaterun import GateRunner
from reconciler.engine.gatesetup import gate_policy, gate_runner
from reconciler.engine.leasecheck import describe_held, held_by_others, utcnow
from reconciler.engine.remote import RemoteBoxes
from reconciler.engine.rules import (
    RulesOutcome,
    RulesTarget,
    ShipOptions,
    box_label,
    read_rules_box,
    rules_agent,
    rules_step,
    ship_rules,
)
from reconciler.errors import BoxError, InputError
from reconciler.journal.base import Holder, Journal
from reconciler.metrics.source import MetricSource
from reconciler.model.agent import Agent
from reconciler.model.box import Health, RotationMark, Stamp
from reconciler.model.fleet import Gate, WaveEntry
from reconciler.model.fleet import Rollout as RolloutPolicy
from reconciler.model.live import BoxState, LiveBox
from reconciler.plan import Plan, PlanError, load_plan, make_plan, verify_plan
from reconciler.plan.model import Delivery, RulesStep
from reconciler.render.stamp import SecretState, next_fence
from reconciler.repo import GitError, commit_time, work_tree
from reconciler.report.refusals import group_refusals
from reconciler.rollout.clock import Clock
from reconciler.rollout.phases import Outcome, Phase
from reconciler.rollout.preflight import Desired, Survey, desired_of, survey
from reconciler.rollout.reporter import Reporter
from reconciler.rollout.state import Rollout
from reconciler.rollout.watchdog import Limits
from reconciler.secrets.desired import prints_of, slots_for
from reconciler.secrets.names import MissingSecretError
from reconciler.secrets.secretsfile import Slot, render_secrets_file
from reconciler.secrets.values import fingerprint
from reconciler.secretstore import desired_fingerprints, fleet_key, resolve_values
from reconciler.transport.base import TransportError
from reconciler.transport.link import FleetLink, former_agents, former_paths
from reconciler.transport.live import Orphan


class ApplyRefused(InputError):
    """Apply stops before anything was written; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Request:
    """What the operator asked for."""

    repo: Path
    allow_dirty: bool = False
    allow_unreachable: bool = False
    force: bool = False
    plan_file: Path | None = None
    soak_s: float | None = None  # overrides the policy's soak (demo and tests)
    env: Mapping[str, str] | None = None
    parallel: int | None = None  # default: fleet.yaml rollout.parallel
    watchdog: Limits | None = None  # default: fleet.yaml rollout.stall_window_s and heartbeat
    soak_interval_s: float = 1.0
    gates: bool = True  # metric gates (fleet.yaml gates:); False: the watchdog only
    # A rotation's phase: the slots it writes for its secret, the marks the stamps get (or
    # clear), its waves and its extra gates (the auth-error gate).
    secret_slots: Mapping[str, Slot] | None = None
    rotation: Mapping[str, RotationMark] | None = None
    rotation_done: frozenset[str] = frozenset()
    waves: tuple[WaveEntry, ...] | None = None
    extra_gates: tuple[Gate, ...] = ()
    # Boxes another run holds (its lease is alive): wait this long for them before the
    # first write, then refuse naming the holders (0: refuse at once). `tell` says so.
    wait_lease_s: float = 0.0
    tell: Callable[[str], None] | None = None
    # For tests only (app.apply's test seam, tests/cli/test_progress_app.py): the gates'
    # metric source instead of the one fleet.yaml names (None: fleet.yaml's).
    metric_source: MetricSource | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """The repo as apply renders it: from HEAD, or from a dirty work tree when allowed."""

    repo: Repo
    revision: str
    dirty: bool


def read_source(req: Request) -> Source:
    """Load the repo from its HEAD commit; a dirty work tree is refused unless allowed."""
    try:
        wt = work_tree(req.repo)
        if wt.dirty and not req.allow_dirty:
            raise ApplyRefused(
                f"{req.repo}: the work tree has uncommitted config changes; apply renders from "
                "the commit: commit them, or pass --allow-dirty (stamps then say "
                f"{wt.head[:12]}+dirty-<hash>)"
            )
    except GitError as exc:
        raise ApplyRefused(f"{exc}; apply needs the fleet repo under git") from None
    try:
        repo = load_repo(wt.files)
    except ConfigErrors as exc:
        first = "\n  ".join(str(e) for e in exc.errors[:10])
        raise ApplyRefused(
            f"the repo does not validate:\n  {first}\nrun `reconcile validate`"
        ) from None
    return Source(repo, wt.revision, wt.dirty)


class Link(FleetLink):
    """The connections of one command (transport.link.FleetLink), plus the rollout's box handles."""

    def __init__(self, source: Source, root: Path) -> None:
        super().__init__(source.repo.fleet.connection, root)
        self.head_revision = source.revision  # what the command was asked to reach

    def box(self, agent: Agent) -> BoxHandle:
        """The rollout's handle on one agent's box (nothing connects yet)."""

        def fetch(url: str) -> Awaitable[Health]:
            return self.probe.fetch_health(
                url, timeout=self.timeout, box=agent.name, host=agent.host
            )

        return BoxHandle(agent, self.ssh(agent), fetch, command_timeout=self.command_timeout(agent))

    async def connect(self, agent: Agent) -> BoxHandle:
        return self.box(agent)


@dataclass
class Prepared:
    """Everything apply knows before touching anything: the plan and how to carry it out."""

    source: Source
    plan: Plan
    survey: Survey
    desired: dict[str, Desired]
    left_out: dict[str, str]  # unreachable boxes left out with --allow-unreachable
    orphans: list[Orphan]
    link: Link
    request: Request
    live: dict[str, LiveBox] = field(default_factory=dict)  # as prepare read the boxes
    read_at: float = 0.0  # time.monotonic() of that read
    moved: dict[str, Agent] = field(default_factory=dict)  # agent at its old config path
    rules: RulesTarget | None = None  # the compiled alert rules (fleet.yaml names a Prometheus)
    # the compiled alertmanager.yml, when fleet.yaml names an Alertmanager box and its
    # stamp names another file (None: nothing to ship)
    alertmanager: am.AlertmanagerTarget | None = None

    @property
    def has_work(self) -> bool:
        """Some agent changes, or the alert rules or alertmanager.yml do."""
        return not self.plan.empty or self.plan.rules is not None or self.alertmanager is not None


async def find_moves(
    link: FleetLink, root: Path, live: dict[str, LiveBox], agents: Sequence[Agent], fleet_id: str,
    key: bytes | None,
) -> dict[str, Agent]:  # fmt: skip
    """The agents whose box is still at an old config path: that path's stamp names this
    agent and fleet, and the current path has no stamp. Their entry in `live` is replaced
    by the box as read at the old path; the result maps each to the agent at that path."""
    candidates = former_paths(root, live, {a.name: a for a in agents})
    moved: dict[str, Agent] = {}
    for round_ in range(max((len(c) for c in candidates.values()), default=0)):
        batch = [c[round_] for n, c in candidates.items() if round_ < len(c) and n not in moved]
        if not batch:
            continue
        for name, box in (await link.read(batch, fleet_id, key)).items():
            if box.state is BoxState.MANAGED:  # stamped for this fleet and agent
                moved[name] = next(a for a in batch if a.name == name)
                live[name] = box
    return moved


def moves_of(moved: Mapping[str, Agent]) -> dict[str, str]:
    """Each moved agent's old config path (survey's `moved_from`)."""
    return {name: a.config_path for name, a in moved.items()}


# A preflight this soon after prepare's own read of every box reuses it (the per-box
# compare-and-swap still guards each write); later, after a long look at the plan, it reads again.
PREFLIGHT_REUSE_S = 30.0


def _refuse_unfit(found: Survey, req: Request, source: Source) -> None:
    """Refuse unreachable or foreign boxes (unless left out), a blocked revision (unless forced)."""
    if found.refused and not req.allow_unreachable:
        lines = "\n  ".join(group_refusals(found.refused))  # grouped by cause, a fix each
        raise ApplyRefused(
            f"{len(found.refused)} box(es) cannot be read (unreachable, unreadable stamp) or "
            f"are refused; nothing was touched:\n  {lines}"
        )
    if found.blocked and not req.force:
        names = ", ".join(found.blocked[:10])
        raise ApplyRefused(
            f"revision {source.revision[:12]} was rolled back automatically (recorded on "
            f"{names}); it is not retried while it is the repo's head: push a fix, or "
            "pass --force to try it again"
        )


def _refuse_during_rotation(
    found: Survey, desired: Mapping[str, Desired], live: Mapping[str, LiveBox]
) -> None:
    """A plain apply must not rewrite a secret whose rotation is pending on the boxes."""
    pending: dict[str, str] = {}
    for box in live.values():
        for name, mark in box.stamp.rotation.items() if box.stamp else ():
            pending.setdefault(name, f"{mark.rotation_id}, {mark.phase}")
    hit = sorted({n for c in found.changes for n in desired[c.agent].secrets if n in pending})
    if hit:
        what = "; ".join(f"{n} ({pending[n]})" for n in hit)
        raise ApplyRefused(
            f"a rotation is pending for {what}: this apply would rewrite the secrets file of "
            f"agents that use it; finish the rotation first (`reconcile rotate-secret {hit[0]} "
            f"--status` shows where each box stands); nothing was touched"
        )


async def prepare(req: Request, link_factory: Callable[[Source], Link] | None = None) -> Prepared:
    """Read the repo and every box, and make (or check) the plan; writes nothing."""
    source = _adjusted(read_source(req), req)
    fleet = source.repo.fleet
    link = (link_factory or (lambda s: Link(s, req.repo)))(source)
    try:
        agents = [ea.agent for ea in source.repo.agents.values()]
        key = fleet_key(fleet, req.repo, req.env)  # secrets files compared when at hand
        live = await _unheld(link, req, agents, fleet.fleet_id, key)
        moved = await find_moves(link, req.repo, live, agents, fleet.fleet_id, key)
        read_at = time.monotonic()
        fps = desired_fingerprints(source.repo, req.repo, req.env, req.secret_slots)
        desired = desired_of(source.repo, fps)
        found = survey(
            source.repo, desired, live, target_revision=source.revision, fast_path=not req.force,
            moved_from=moves_of(moved),
        )  # fmt: skip
        _refuse_unfit(found, req, source)
        if req.secret_slots is None:
            _refuse_during_rotation(found, desired, live)
        former = former_agents(req.repo, live.values(), source.repo.agents.keys())
        orphans = await link.orphans(agents, fleet.fleet_id, former)
        policy = fleet.rollout
        if req.soak_s is not None:
            policy = policy.model_copy(update={"soak_s": req.soak_s})
        if req.waves is not None:
            policy = policy.model_copy(update={"waves": list(req.waves)})
        try:
            plan = make_plan(
                found.changes, fleet_id=fleet.fleet_id, target_revision=source.revision,
                policy=policy, gates=fleet.gates, orphans=[o.agent for o in orphans],
            )  # fmt: skip
            if req.plan_file is not None:
                saved = load_plan(req.plan_file.read_text(encoding="utf-8"), fleet.gates)
                verify_plan(saved, found.changes)
                plan = saved
        except PlanError as exc:
            raise ApplyRefused(exc.message) from None
        except OSError as exc:
            raise ApplyRefused(
                f"cannot read the plan file {req.plan_file}: {exc.strerror}"
            ) from None
        # Alert rules ship with a plain apply (a rotation's phases carry secrets only).
        rules = _rules_target(source) if req.secret_slots is None else None
        if rules is not None:
            plan = plan.model_copy(update={"rules": await _rules_step(link, source, rules)})
        manager = await _alertmanager_pending(link, source) if req.secret_slots is None else None
    except BaseException:
        await link.close()
        raise
    return Prepared(
        source, plan, found, desired, dict(found.refused), orphans, link, req, live, read_at,
        moved, rules, manager,
    )  # fmt: skip


LEASE_POLL_S = 2.0  # how often a wait for boxes another run holds reads them again


async def _unheld(
    link: Link, req: Request, agents: list[Agent], fleet_id: str, key: bytes | None
) -> dict[str, LiveBox]:
    """Every box read, once no other live run holds any of them (up to req.wait_lease_s).

    Raises:
        ApplyRefused: boxes are still held when the wait is over; nothing was written.
    """
    live = await link.read(agents, fleet_id, key)
    held = held_by_others(live, utcnow())
    deadline = time.monotonic() + req.wait_lease_s
    said = ""
    while held and time.monotonic() < deadline:
        what = describe_held(held)
        if req.tell is not None and what != said:
            req.tell(f"waiting up to {req.wait_lease_s:g}s (--wait-lock) for {what}")
            said = what
        await asyncio.sleep(min(LEASE_POLL_S, max(0.0, deadline - time.monotonic())))
        live = await link.read(agents, fleet_id, key)
        held = held_by_others(live, utcnow())
    if held:
        raise ApplyRefused(
            f"another run is changing this fleet: {describe_held(held)}. Nothing was written. "
            "Wait for it with --wait-lock SECONDS (apply reads the boxes again until they are "
            "free), or, if that run is dead, its leases stop counting once their heartbeat is "
            "stale; `reconcile resume` on its machine settles what it left."
        )
    return live


async def _alertmanager_pending(link: Link, source: Source) -> am.AlertmanagerTarget | None:
    """The compiled alertmanager.yml when the Alertmanager box lacks it (unreachable:
    refused, nothing written)."""
    fleet = source.repo.fleet
    if fleet.alertmanager is None:
        return None
    compiled = compile_alerts(source.repo)
    target = am.marked(compiled.alertmanager, compiled.secrets)
    h = link.box(am.alertmanager_agent(fleet.alertmanager, fleet.connection))
    try:
        pending = await am.needs_shipping(h, target)
    except (BoxError, TransportError) as exc:
        label = am.box_label(fleet.alertmanager, fleet.connection)
        raise ApplyRefused(
            f"the Alertmanager box {label} cannot be read: {exc}; nothing was touched"
        ) from None
    return target if pending else None


def _rules_target(source: Source) -> RulesTarget | None:
    """The compiled alert rules, when fleet.yaml names a Prometheus box to ship them to."""
    fleet = source.repo.fleet
    if fleet.prometheus is None:
        return None
    compiled = compile_alerts(source.repo)
    return RulesTarget(fleet.fleet_id, compiled.rule_files, compiled.groups)


async def _rules_step(link: Link, source: Source, target: RulesTarget) -> RulesStep | None:
    """The plan's rules step: the Prometheus box read (unreachable: refused, nothing written)."""
    fleet = source.repo.fleet
    if fleet.prometheus is None:
        return None
    label = box_label(fleet.prometheus, fleet.connection)
    h = link.box(rules_agent(fleet.prometheus, fleet.connection, fleet.fleet_id))
    try:
        live = await read_rules_box(h)
    except (BoxError, TransportError) as exc:
        raise ApplyRefused(
            f"the Prometheus box {label} cannot be read: {exc}; nothing was touched"
        ) from None
    return rules_step(label, target, live)


def targets_of(p: Prepared) -> dict[str, Target]:
    """Each plan box's bytes and secrets file; MissingSecretError (ApplyRefused) names the gap."""
    return targets_for(p.source, p.plan, p.desired, p.link, p.request, p.moved)


def targets_for(
    source: Source,
    plan: Plan,
    desired: Mapping[str, Desired],
    link: Link,
    req: Request,
    moved: Mapping[str, Agent],
) -> dict[str, Target]:
    """`targets_of` from its parts (a worker has the journal's plan, not a `Prepared`)."""
    repo = source.repo
    override = req.secret_slots or {}
    names: set[str] = set()
    for agent in plan.agents:
        names |= desired[agent].secrets
    try:
        values = resolve_values(names - set(override), repo.fleet, req.repo, req.env)
    except MissingSecretError as exc:
        raise ApplyRefused(str(exc)) from None
    key = fleet_key(repo.fleet, req.repo, req.env)
    marks = dict(req.rotation or {})
    out: dict[str, Target] = {}
    for agent in plan.agents:
        want = desired[agent]
        slots = slots_for(want.secrets, values, override)
        secrets = render_secrets_file(slots) if want.secrets else None
        fp = fingerprint(secrets, key) if secrets is not None and key else None
        state = None
        if secrets is not None and key:
            state = SecretState(fp, prints_of(slots, key), {n: m for n, m in marks.items()
                                                             if n in want.secrets})  # fmt: skip
        former = link.box(moved[agent]) if plan.box(agent).moved else None
        out[agent] = Target(
            link.box(repo.agents[agent].agent), want.data, secrets, fp, state,
            req.rotation_done & want.secrets, former=former,
        )  # fmt: skip
    return out


def _adjusted(source: Source, req: Request) -> Source:
    """The source with a rotation's extra gates added to fleet.yaml's."""
    if not req.extra_gates:
        return source
    fleet = source.repo.fleet
    have = {g.name for g in fleet.gates}
    gates = [*fleet.gates, *(g for g in req.extra_gates if g.name not in have)]
    repo = replace(source.repo, fleet=fleet.model_copy(update={"gates": gates}))
    return replace(source, repo=repo)


def preflight_check(p: Prepared) -> Callable[[], Awaitable[str | None]]:
    """The Preflight command: every plan box reachable, healthy enough to answer, unmoved."""

    async def check() -> str | None:
        repo = p.source.repo
        agents = [repo.agents[a].agent for a in p.plan.agents]
        if p.live and time.monotonic() - p.read_at < PREFLIGHT_REUSE_S:
            live = {a.name: p.live[a.name] for a in agents if a.name in p.live}
        else:
            key = fleet_key(repo.fleet, p.request.repo, p.request.env)
            live = await p.link.read(agents, repo.fleet.fleet_id, key)
            moved = [p.moved[a.name] for a in agents if a.name in p.moved]
            if moved:  # a move's box is still read at its old path
                live.update(await p.link.read(moved, repo.fleet.fleet_id, key))
        bad = {
            a: (b.reason or str(b.state))
            for a, b in live.items()
            if b.state in (BoxState.UNKNOWN, BoxState.FOREIGN)
        }
        bad.update(
            {a: f"no health answer: {b.health_error}" for a, b in live.items()
             if a not in bad and b.health is None}
        )  # fmt: skip
        if bad:
            return "; ".join(f"{a}: {r}" for a, r in sorted(bad.items()))
        sub = replace(repo, agents={a: repo.agents[a] for a in p.plan.agents})
        found = survey(
            sub, p.desired, live, target_revision=p.plan.target_revision,
            fast_path=not p.request.force, moved_from=moves_of(p.moved),
        )  # fmt: skip
        try:
            verify_plan(p.plan, found.changes)
        except PlanError as exc:
            return exc.message
        return None

    return check


def box_timeout(repo: Repo) -> float:
    """How long one box's apply or restore may take: verification plus four commands at the
    slowest agent's command timeout."""
    conn = repo.fleet.connection
    slowest = max(
        (ea.agent.command_timeout_s or conn.command_timeout_s for ea in repo.agents.values()),
        default=conn.command_timeout_s,
    )
    return repo.fleet.rollout.verify_timeout_s + 4 * slowest


def watchdog_limits(policy: RolloutPolicy) -> Limits:
    """The watchdog's limits as fleet.yaml's rollout policy sets them."""
    return Limits(
        max_heartbeat_age_s=policy.max_heartbeat_age_s, stall_window_s=policy.stall_window_s
    )


def new_rollout_id(clock: Clock) -> str:
    """A sortable, unique rollout id: UTC time then random."""
    return f"{clock.now().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def take_fence(journal: Journal | None, fleet_id: str, stamps: list[Stamp | None]) -> int:
    """This rollout's fencing number: above every number on the boxes' stamps and, with a
    journal, above every number its backend handed out (so it never repeats, even when
    the stamps were reset)."""
    seen = next_fence(stamps) - 1
    return journal.take_fence(fleet_id, seen) if journal is not None else seen + 1


async def execute(
    p: Prepared,
    *,
    clock: Clock,
    reporter: Reporter,
    journal: Journal | None = None,
    rollout_id: str | None = None,
    write_incident: IncidentWriter | None = None,
    on_driver: Callable[[Driver], None] | None = None,
    on_rollout_id: Callable[[str], None] | None = None,
    internal_error: InternalErrorSink | None = None,
    holder: str | None = None,
    on_boundary: Callable[[str, str | None], None] | None = None,
    remote: RemoteBoxes | None = None,
) -> RunResult:
    """Carry the plan out (secrets resolved first: a missing one stops before any write),
    then ship the alert rules when they changed and the agents' rollout finished.
    `remote`: the box operations go to worker processes (engine/workers.py)."""
    targets = targets_of(p)
    fleet = p.source.repo.fleet
    opts = Options(
        rollout_id=rollout_id or new_rollout_id(clock),
        holder=holder or str(Holder.here()),
        revision=p.source.revision,
        fleet_id=fleet.fleet_id,
        parallel=p.request.parallel or fleet.rollout.parallel,
        history_keep=fleet.rollout.history_keep,
        verify_timeout_s=fleet.rollout.verify_timeout_s,
        lease_ttl_s=fleet.rollout.lease_ttl_s,
        box_timeout_s=box_timeout(p.source.repo),
        watchdog=p.request.watchdog or watchdog_limits(fleet.rollout),
        soak_interval_s=p.request.soak_interval_s,
        fence=take_fence(journal, fleet.fleet_id, [b.stamp for b in p.live.values()]),
        allowed_paths=tuple(fleet.connection.allowed_paths),
        verdict_blocks=p.request.secret_slots is None,
        fleet_key=fleet_key(fleet, p.request.repo, p.request.env),
    )
    alert_only = p.plan.rules is not None or p.alertmanager is not None
    if not p.plan.boxes and alert_only:  # alert-only: no agent is touched
        state = replace(Rollout.start(p.plan), phase=Phase.DONE)
        result = RunResult(Outcome.DONE, opts.rollout_id, state)
        return await _ship_last(p, result, opts, clock, on_boundary)
    committed = None
    if p.plan.boxes and all(b.delivery is Delivery.RESTORE for b in p.plan.boxes):
        # A revert: every box gets back a config it ran. Time from its commit counts.
        committed = commit_time(p.request.repo, p.plan.target_revision)
    runner = None
    if p.request.gates:
        shas = {a: d.sha for a, d in p.desired.items()}
        if p.request.metric_source is not None:  # a test's samples
            policy = gate_policy(p.source.repo, p.plan, shas)
            runner = GateRunner(p.request.metric_source, policy, clock)
        else:
            runner = gate_runner(p.source.repo, p.plan, shas, p.link.probe, p.link.timeout, clock)
    driver = Driver(
        p.plan, targets, opts, clock=clock, reporter=reporter, journal=journal,
        preflight=preflight_check(p), write_incident=write_incident,
        on_rollout_id=on_rollout_id, internal_error=internal_error, gate_runner=runner,
        on_boundary=on_boundary, committed_at=committed, remote=remote,
    )  # fmt: skip
    if on_driver is not None:
        on_driver(driver)
    try:
        result = await driver.run()
    finally:
        if driver.gate_runner is not None:
            await driver.gate_runner.source.close()
    return await _ship_last(p, result, driver.opts, clock, on_boundary)


async def _ship_last(
    p: Prepared,
    result: RunResult,
    opts: Options,
    clock: Clock,
    on_boundary: Callable[[str, str | None], None] | None = None,
) -> RunResult:
    """The rollout's last steps, only after every agent wave passed: alertmanager.yml
    (so the routes exist before the alerts that name them), then the alert rules."""
    step, target, fleet = p.plan.rules, p.rules, p.source.repo.fleet
    rules_due = step is not None and target is not None and fleet.prometheus is not None
    if not rules_due and p.alertmanager is None:
        return result
    if result.outcome is not Outcome.DONE:
        result.rules = RulesOutcome(
            "skipped", f"alert rules not shipped: the agents' rollout ended {result.outcome}"
        )
        return result
    shipped_am = None
    if p.alertmanager is not None:
        shipped_am = await _ship_alertmanager(p, p.alertmanager, result, opts, clock)
        if not shipped_am.ok or not rules_due:
            result.rules = shipped_am
            return result
    if step is None or target is None or fleet.prometheus is None:
        return result
    h = p.link.box(rules_agent(fleet.prometheus, fleet.connection, fleet.fleet_id))
    ship = ShipOptions(
        box=fleet.prometheus, rollout_id=result.rollout_id, holder=opts.holder,
        revision=opts.revision, fence=opts.fence, lease_ttl_s=opts.lease_ttl_s,
        allowed_paths=opts.allowed_paths, on_boundary=on_boundary,
    )  # fmt: skip
    result.rules = await ship_rules(h, target, step, ship, clock)
    if shipped_am is not None:
        result.rules = replace(
            result.rules, message=f"{shipped_am.message}\n{result.rules.message}"
        )
    return result


async def _ship_alertmanager(
    p: Prepared, target: am.AlertmanagerTarget, result: RunResult, opts: Options, clock: Clock
) -> RulesOutcome:
    """alertmanager.yml to the Alertmanager box, its secret URLs resolved only now."""
    fleet = p.source.repo.fleet
    if fleet.alertmanager is None:
        return RulesOutcome("skipped", "alertmanager.yml not shipped: no alertmanager box")
    try:
        values = resolve_values(target.secrets, fleet, p.request.repo, p.request.env)
    except MissingSecretError as exc:
        return RulesOutcome("failed", f"alertmanager.yml not shipped: {exc}")
    h = p.link.box(am.alertmanager_agent(fleet.alertmanager, fleet.connection))
    ship = am.AlertmanagerOptions(
        box=fleet.alertmanager, rollout_id=result.rollout_id, holder=opts.holder,
        revision=opts.revision, fence=opts.fence, lease_ttl_s=opts.lease_ttl_s,
        allowed_paths=opts.allowed_paths, fleet_id=fleet.fleet_id,
    )  # fmt: skip
    plain = {n: values.reveal(n) for n in values.names()}
    return await am.ship_alertmanager(h, target, plain, ship, clock)
