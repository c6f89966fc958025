"""`reconcile apply` and `reconcile unlock`: thin shells over rollout/session.py and the journal.

apply: settle a rollout that was cut short (resuming.py) -> prepare (read repo and
boxes, plan; nothing written) -> show the plan -> ask (or --yes) -> lock ->
journal -> drive -> exit 0/1/3/4. --dry-run stops after showing the plan (and what
it would settle first): no lease, no lock, no journal. Progress goes to stderr
(rich), or as JSON lines to stdout with --format json.

SIGTERM and SIGINT during a rollout start no new box, put back what the rollout
changed, write the incident report and exit 3; a second signal changes nothing (kill
-9 is safe too: the next apply settles). An unexpected error inside the rollout does
the same, with its traceback kept in the state dir (`--debug` prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, fail, out
from reconciler.cli.resuming import (
    preview_cut_short,
    report,
    resume_first,
    state_dir_of,
    take_lock,
)
from reconciler.engine.clock import SystemClock
from reconciler.engine.driver import Driver, RunResult
from reconciler.engine.session import (
    ApplyRefused,
    Link,
    Prepared,
    Request,
    Source,
    execute,
    prepare,
    read_source,
)
from reconciler.journal.base import LockError, LockHeld
from reconciler.journal.lock import SqliteLock
from reconciler.journal.sqlite import SqliteJournal
from reconciler.plan.model import Delivery, Plan
from reconciler.report.incident import (
    incident_doc,
    render_incident_json,
    render_incident_markdown,
)
from reconciler.rollout.commands import WriteIncident
from reconciler.rollout.phases import Outcome
from reconciler.rollout.reporter import JsonValue
from reconciler.rollout.runrecord import RunRecord
from reconciler.rollout.state import BoxStatus


class TextReporter:
    """Progress on stderr, one line per step, coloured."""

    _STYLE: Mapping[str, str] = {
        "box.failed": "bold red",
        "watchdog.failed": "bold red",
        "soak.problem": "bold red",
        "gates.failed": "bold red",
        "box.restore_failed": "bold red reverse",
        "rollback.started": "bold yellow",
        "box.applied": "green",
        "box.restored": "yellow",
        "warning": "yellow",
    }

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        if kind == "soak.tick":
            err.print(f"  wave {fields['wave']}: soaking, {fields['remaining_s']}s left")
            return
        if kind in ("gates.passed", "gates.failed") and isinstance(fields.get("figures"), list):
            self._gates(kind, fields)
            return
        style = self._STYLE.get(kind, "")
        detail = "  ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{kind:18} {detail}"
        err.print(f"[{style}]{text}[/]" if style else text, markup=bool(style), highlight=False)

    def _gates(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        """One line per gate: outcome, canary vs baseline, threshold, samples."""
        err.print(f"{kind:18} wave={fields.get('wave')}", highlight=False, markup=False)
        for f in fields["figures"]:  # type: ignore[union-attr]
            if not isinstance(f, dict):
                continue
            if "outcome" not in f:
                line = f"{'ok' if f.get('ok') else 'FAIL'}: {f.get('detail')}"
            else:
                line = (
                    f"{str(f['outcome']).upper()}: {f['reason']}; canary {f['canary']} "
                    f"baseline {f['baseline']} threshold {f['threshold']} samples "
                    f"{f['canary_samples']}/{f['baseline_samples']} ({f['baseline_kind']})"
                )
            style = "green" if f.get("ok") else "bold red"
            err.print(f"  {f.get('gate')}: {line}", style=style, markup=False, highlight=False)


class JsonReporter:
    """One JSON object per line on stdout, for CI logs."""

    def note(self, kind: str, fields: Mapping[str, JsonValue]) -> None:
        sys.stdout.write(json.dumps({"event": kind, **fields}) + "\n")
        sys.stdout.flush()


def show_plan(p: Prepared, fmt: Format) -> None:
    """The exact plan: waves, agents in each, their changes, gates; orphans and left-out boxes."""
    plan: Plan = p.plan
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
            out.print(f"  {agent}: {step.label}{adopt}: {fields}", markup=False)
    for name, why in sorted(p.left_out.items()):
        out.print(f"left out (--allow-unreachable): {name}: {why}", markup=False)
    for o in p.orphans:
        out.print(
            f"orphan (left alone): {o.agent} on {o.host}:{o.port} ({o.stamp_path})", markup=False
        )


def _incident_writer(state_dir: Path) -> Any:
    def write(run: RunRecord, cmd: WriteIncident) -> dict[str, str]:
        doc = incident_doc(run, cmd)
        folder = state_dir / "incidents"
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / run.rollout_id
        md, js = base.with_suffix(".md"), base.with_suffix(".json")
        md.write_text(render_incident_markdown(doc), encoding="utf-8")
        js.write_text(render_incident_json(doc), encoding="utf-8")
        return {"markdown": str(md), "json": str(js)}

    return write


def _confirm(yes: bool, plan: Plan) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail("no terminal to ask for confirmation; review the plan and pass --yes to apply it")
    if not typer.confirm(f"apply plan {plan.plan_id[:12]} to {len(plan.boxes)} box(es)?", err=True):
        fail("not applied: the operator said no")


def save_traceback(state_dir: Path, label: str, text: str) -> str:
    """Keep a traceback in STATE_DIR/errors/ (0600); its path, for the one-line error."""
    folder = state_dir / "errors"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}-{label}.txt"
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")
    return str(path)


async def _run(req: Request, opts: dict[str, Any], ctx: dict[str, Any]) -> int:
    # One set of connections for the whole command: the resume check, the plan, the rollout.
    links: list[Link] = []

    def shared(source: Source) -> Link:
        if not links:
            links.append(Link(source, req.repo))
        return links[0]

    async def close_links() -> None:
        for link in links:
            await link.close()

    if not opts["dry_run"]:
        reporter = JsonReporter() if opts["fmt"] is Format.json else TextReporter()
        try:
            resumed = await resume_first(
                req.repo, opts["state_dir"], reporter, explicit=False, link_factory=shared,
                wait_lock_s=opts["wait_lock"],
            )  # fmt: skip
        except BaseException:
            await close_links()
            raise
        if resumed is not None:
            report(resumed)
            head = links[0].head_revision if links else None
            if head is None or resumed.stops_apply(head):
                await close_links()
                return resumed.exit_code  # rolled back (a verdict, or policy), or a box failed
            err.print("going on to the head", markup=False)
    try:
        p = await prepare(req, shared)
    except ApplyRefused as exc:
        await close_links()
        fail(str(exc))
    try:
        fmt: Format = opts["fmt"]
        state_dir = state_dir_of(opts["state_dir"], p.source.repo.fleet.state_dir)
        ctx["state_dir"] = state_dir
        if opts["dry_run"]:
            for line in await preview_cut_short(req.repo, opts["state_dir"], p.link, p.source):
                err.print(line, markup=False)
        show_plan(p, Format.json if fmt is Format.json and opts["dry_run"] else Format.text)
        if opts["dry_run"]:
            _tell_settings(p, state_dir)
            return 0
        if p.plan.empty:
            return 0
        _confirm(opts["yes"], p.plan)
        return await _locked(p, req, state_dir, opts, ctx)
    finally:
        await p.link.close()


def _tell_settings(p: Prepared, state_dir: Path) -> None:
    """What a real run would use: key, known_hosts, state dir (on stderr)."""
    conn = p.source.repo.fleet.connection
    err.print(
        f"would use: SSH key {conn.key or '(ssh defaults)'}, known_hosts "
        f"{conn.known_hosts or '~/.ssh/known_hosts'}, state dir {state_dir}",
        markup=False,
    )


async def _locked(
    p: Prepared, req: Request, state_dir: Path, opts: dict[str, Any], ctx: dict[str, Any]
) -> int:
    fleet = p.source.repo.fleet
    lock = SqliteLock(state_dir)
    ttl = fleet.rollout.lease_ttl_s
    try:
        # Not lock.wait in a thread: the lock's SQLite connection belongs to this one.
        lease, _ = await take_lock(lock, fleet.fleet_id, ttl_s=ttl, wait_s=opts["wait_lock"])
    except LockHeld as exc:
        fail(str(exc))
    journal = SqliteJournal(state_dir)
    current = {"lease": lease}

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(LockError):
                current["lease"] = lock.renew(current["lease"], ttl_s=ttl)

    def bind(rid: str) -> None:
        current["lease"] = lock.bind(current["lease"], rid)

    signals = (signal.SIGINT, signal.SIGTERM)

    def on_driver(d: Driver) -> None:
        ctx["driver"] = d
        loop = asyncio.get_running_loop()
        for sig in signals:
            reason = (
                f"interrupted by {sig.name}: no new box is started, what this rollout "
                "changed is put back (not a verdict on the change: the revision is not blocked)"
            )
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, d.interrupt, reason)

    def keep(rid: str, text: str) -> str:
        return save_traceback(state_dir, rid, text)

    reporter = JsonReporter() if opts["fmt"] is Format.json else TextReporter()
    renewer = asyncio.create_task(renew())
    try:
        result: RunResult = await execute(
            p, clock=SystemClock(), reporter=reporter, journal=journal,
            write_incident=_incident_writer(state_dir), on_driver=on_driver, on_rollout_id=bind,
            internal_error=keep,
        )  # fmt: skip
    except ApplyRefused as exc:
        fail(str(exc))
    finally:
        renewer.cancel()
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().remove_signal_handler(sig)
        with contextlib.suppress(LockError):
            lock.release(current["lease"])
        journal.close()
        lock.close()
    _summary(result)
    return result.exit_code


def _summary(result: RunResult) -> None:
    for line in result.internal_errors:
        err.print(f"error: {line}", markup=False, style="bold red")
    if result.outcome is Outcome.ABORTED:
        err.print(
            f"nothing changed: {result.state.trigger or 'stopped before any box was written'}",
            markup=False,
        )
    for kind, path in result.incident.items():
        err.print(f"incident report ({kind}): {path}", markup=False)
    restore_failed = result.state.agents_in(BoxStatus.RESTORE_FAILED)
    if restore_failed:
        err.print(
            f"[bold red reverse]ROLLBACK FAILED on {', '.join(restore_failed)}: "
            "these boxes need a human now[/]"
        )
    err.print(f"rollout {result.rollout_id}: {result.outcome}", markup=False)


def apply(
    repo: RepoOpt = Path(),
    yes: Annotated[bool, typer.Option("--yes", help="Apply without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact plan; touch nothing.")
    ] = False,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Apply this saved plan (refused if stale).")
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Apply the uncommitted work tree.")
    ] = False,
    allow_unreachable: Annotated[
        bool, typer.Option("--allow-unreachable", help="Leave unreachable boxes out.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Retry a revision that was rolled back.")
    ] = False,
    wait_lock: Annotated[
        float | None,
        typer.Option("--wait-lock", help="Wait up to SECONDS for the fleet lock."),
    ] = None,
    soak: Annotated[
        float | None, typer.Option("--soak", help="Override the policy's soak seconds.")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal and lock directory.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json event lines.")] = (
        Format.text
    ),
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of an internal error.")
    ] = False,
) -> None:
    """Roll the repo's HEAD out to the fleet in waves, with watchdog and auto-rollback.

    Renders from the HEAD commit (a dirty tree is refused unless --allow-dirty),
    reaches every box first, shows the plan and asks (--yes skips the question).
    A rollout cut short before (a crash, a signal) is settled first, then apply goes
    on to the head. SIGTERM/SIGINT put back what the rollout changed, then exit 3.
    Exit codes: 0 done, 1 error before anything changed, 3 rolled back cleanly,
    4 a rollback failed on some box (named loudly).

    Examples:  reconcile apply --repo demo-fleet/fleet --dry-run
               reconcile apply --repo demo-fleet/fleet --yes
    """
    req = Request(
        repo=repo, allow_dirty=allow_dirty, allow_unreachable=allow_unreachable, force=force,
        plan_file=plan_file, soak_s=soak,
    )  # fmt: skip
    opts = {
        "yes": yes, "dry_run": dry_run, "wait_lock": wait_lock, "state_dir": state_dir,
        "fmt": fmt,
    }  # fmt: skip
    ctx: dict[str, Any] = {}
    try:
        code = asyncio.run(_run(req, opts, ctx))
    except KeyboardInterrupt:
        fail("interrupted before the rollout began; nothing of it was written")
    except typer.Exit:
        raise
    except Exception as exc:
        _internal_exit(exc, ctx, state_dir, debug)
    raise typer.Exit(code)


def _internal_exit(exc: Exception, ctx: dict[str, Any], given: Path | None, debug: bool) -> None:
    """One line for an unexpected error; exit 3 when a box may have changed, else 1."""
    text = "".join(traceback.format_exception(exc))
    where = Path(ctx.get("state_dir") or state_dir_of(given, None))
    try:
        path = save_traceback(where, "apply", text)
    except OSError:
        path = "(could not be saved)"
    if debug:
        err.print(text, markup=False)
    driver: Driver | None = ctx.get("driver")
    changed = driver is not None and bool(driver.state.changed)
    then = (
        "some boxes may hold the new config: run `reconcile apply` again to settle them"
        if changed
        else "nothing was written"
    )
    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    fail(
        f"internal error (a reconciler bug, not the config): {what}; {then}; traceback in "
        f"{path} (--debug prints it)",
        Exit.ROLLED_BACK if changed else Exit.ERROR,
    )


def _fleet_state_dir(repo: Path) -> str | None:
    """fleet.yaml's state_dir, so unlock looks where apply locks (None: not set or unreadable)."""
    try:
        return read_source(Request(repo=repo, allow_dirty=True)).repo.fleet.state_dir
    except ApplyRefused:
        return None


def unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock id a refused apply named.")],
    repo: RepoOpt = Path(),
    force: Annotated[bool, typer.Option("--force", help="Required: break the lock.")] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Journal and lock directory.")
    ] = None,
) -> None:
    """Break a fleet lock whose holder is dead (needs --force and the lock id).

    The lock id is printed by the `apply` that was refused, with its holder. The lock is
    looked up where apply keeps it: --state-dir, else fleet.yaml's state_dir, else
    ~/.local/state/reconciler.

    Example:  reconcile unlock --force 6b1f0c2e9d4a4f7e8a3c5d2b1e0f9a87 --repo demo-fleet/fleet
    """
    if not force:
        fail("unlock breaks another run's lock: pass --force with the lock id")
    lock = SqliteLock(state_dir_of(state_dir, _fleet_state_dir(repo)))
    try:
        broken = lock.force_release(lock_id)
    finally:
        lock.close()
    if broken is None:
        fail(f"no lock {lock_id}; nothing released", Exit.ERROR)
    err.print(f"released lock {lock_id}: was held by {broken.describe()}", markup=False)
