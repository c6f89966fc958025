"""Rotating one secret with zero downtime: stage `next`, promote it, retire the old value.

    stage   : every box that uses NAME gets {current: old, next: new}, in waves of about
              10 agents, behind the watchdog, the fleet's gates and an auth-error gate
              (outbound agents send `next` at once, so a bad key shows as auth errors);
    promote : {current: new} everywhere, in the same waves; refused while a box lacks `next`;
    retire  : no kept copy of the old value stays on any box and the stamps drop the
              rotation; refused while a box is unreachable. The backend must hold the new
              value by then (an age file is re-encrypted by `reconcile secrets set`; env and
              files are the operator's, and the rotation stays "retire pending" until the
              backend's fingerprint matches).

Each of stage and promote is a rollout through the same engine as apply (plan, question,
lock, journal, incident, `reconcile resume`); the pending rotation is written into every
box's stamp, so another machine sees it, and a plain `apply` that would rewrite NAME is
refused meanwhile. A failed stage rolls back: `next` leaves every box, `current` never
stopped working, exit 3. Re-running the same command picks up where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reconciler.app.apply import LOCK_TTL_S, RENEW_EVERY_S, ApplyRequest, ApplyView, run_locked
from reconciler.app.resume import ResumeRequest, settle_first
from reconciler.app.secrets import set_secret, set_summary
from reconciler.app.state import StateDir, open_state
from reconciler.app.trace import Trace
from reconciler.engine.boxops import BoxHandle, BoxOpError
from reconciler.engine.clock import SystemClock
from reconciler.engine.session import Link, Request, Source, prepare, read_source
from reconciler.engine.steps import Crew, retire_box
from reconciler.errors import InputError
from reconciler.journal.base import Holder, LockError
from reconciler.model.box import RotationMark, SecretPrint
from reconciler.model.fleet import Gate, WaveEntry
from reconciler.model.live import BoxState, LiveBox
from reconciler.render.stamp import next_fence
from reconciler.secrets.desired import prints_of, referenced
from reconciler.secrets.names import MissingSecretError, env_name
from reconciler.secrets.redact import REDACTOR
from reconciler.secrets.secretsfile import SecretsFileError, Slot, parse_secrets_file
from reconciler.secrets.values import value_fingerprint
from reconciler.secretstore import backend_of, fleet_key, resolve_values
from reconciler.transport.base import TransportError

Phase = Literal["stage", "promote", "retire"]
PHASES: tuple[Phase, ...] = ("stage", "promote", "retire")
AUTH_GATE = "rotation-auth-errors"


class RotationRefused(InputError):
    """The rotation cannot go on; the message says why and what to do (exit 1)."""


@dataclass(frozen=True, slots=True)
class RotateRequest:
    """What `reconcile rotate-secret` was asked."""

    repo: Path
    name: str
    value: str | None = None  # the new value (--value-file); None: the backend's (--from-backend)
    until: Phase = "retire"
    state_dir: Path | None = None
    dry_run: bool = False
    soak_s: float | None = None
    wave_size: int = 10
    auth_max: float = 0.02
    wait_lock_s: float | None = None
    env: Mapping[str, str] | None = None


@dataclass
class RotateResult:
    """How it ended: the exit code, the phases run, and where each box stands."""

    exit_code: int
    done: list[Phase] = field(default_factory=list)
    retire_pending: str | None = None  # what the operator must still do at the backend


@dataclass(frozen=True, slots=True)
class BoxStanding:
    """Where one box stands in a rotation of one secret (fingerprints, never values)."""

    agent: str
    where: str  # old | staged | promoted | new | no rotation | unreachable | not checked | other
    mark: RotationMark | None = None
    current: str | None = None  # keyed fingerprint of its current value


def rotation_waves(n: int, size: int) -> tuple[WaveEntry, ...]:
    """A canary of one agent, then about `size` agents a wave: cumulative counts, then 100%.

    The canary wave leaves every other agent unchanged while it is judged, so the later,
    larger waves have each agent's own "before the change" window as their baseline."""
    return (*range(1, n, size), "100%")


def auth_gate(fleet_gates: list[Gate], max_rate: float) -> Gate:
    """The auth-error gate a rotation adds (samples as the fleet's error-rate gate needs)."""
    samples = next((g.min_samples for g in fleet_gates if g.metric == "error_rate"), 100)
    return Gate(name=AUTH_GATE, metric="auth_error_rate", max=max_rate, min_samples=samples)


def standing(
    box: LiveBox, name: str, new_fp: str | None, read: SecretPrint | None = None
) -> BoxStanding:
    """Where `box` stands for secret `name` (new_fp: the new value's keyed fingerprint;
    `read`: its fingerprints from the box's own file when the stamp records none)."""
    if box.state in (BoxState.UNKNOWN, BoxState.FOREIGN) or box.stamp is None:
        return BoxStanding(box.agent, "unreachable" if box.state is BoxState.UNKNOWN else "other")
    mark = box.stamp.rotation.get(name)
    prints = box.stamp.secrets.get(name) or read
    if prints is None:
        return BoxStanding(box.agent, "not checked", mark)
    if new_fp is None:  # no rotation pending: does it hold the backend's value?
        return BoxStanding(box.agent, "no rotation", mark, prints.current)
    if prints.next == new_fp:
        return BoxStanding(box.agent, "staged", mark, prints.current)
    if prints.current == new_fp:
        return BoxStanding(box.agent, "promoted" if mark else "new", mark, prints.current)
    return BoxStanding(box.agent, "old", mark, prints.current)


class _Rotation:
    """One `reconcile rotate-secret` run (see the module docstring)."""

    def __init__(self, req: RotateRequest, view: ApplyView | None, trace: Trace) -> None:
        self.req, self.view, self.trace = req, view, trace
        self.source: Source = read_source(Request(repo=req.repo, env=req.env))
        self.fleet = self.source.repo.fleet
        if req.name not in self.source.repo.secrets:
            raise RotationRefused(
                f"secret {req.name!r} is not declared in secrets/index.yaml; declared: "
                f"{', '.join(sorted(self.source.repo.secrets)) or 'none'}"
            )
        refs = referenced(self.source.repo)
        self.users = sorted(a for a, names in refs.items() if req.name in names)
        if not self.users:
            raise RotationRefused(f"no agent refers to secret {req.name!r}: nothing to rotate")
        key = fleet_key(self.fleet, req.repo, req.env)
        if key is None:
            raise RotationRefused(
                "a rotation needs the fleet key to tell old from new on the boxes: set "
                f"{self.fleet.secrets.fleet_key_env} or fleet.yaml secrets.fleet_key_file"
            )
        self.key = key
        self.link = Link(self.source, req.repo)
        self.pending = False  # a rotation of the secret is pending on some box

    def backend_value(self) -> str | None:
        try:
            values = resolve_values([self.req.name], self.fleet, self.req.repo, self.req.env)
        except MissingSecretError as exc:
            if exc.failed:  # a wrong identity or a broken file: say so, not "no value"
                raise
            return None
        return values.reveal(self.req.name)

    async def read(self) -> dict[str, LiveBox]:
        agents = [self.source.repo.agents[a].agent for a in self.users]
        return await self.link.read(agents, self.fleet.fleet_id, self.key)

    async def slot_on(self, box: LiveBox) -> Slot | None:
        """The secret's slot in the box's own secrets file (None: unreadable or absent);
        its values are registered with the redactor."""
        if box.state in (BoxState.UNKNOWN, BoxState.FOREIGN):
            return None
        h = self.link.box(self.source.repo.agents[box.agent].agent)
        try:
            raw = await h.box.read_file(h.paths.secrets)
            slot = parse_secrets_file(raw or b"{}").get(self.req.name)
        except (TransportError, SecretsFileError):
            return None
        if slot is not None:
            REDACTOR.add(slot.values())
        return slot

    async def read_prints(self, live: Mapping[str, LiveBox]) -> dict[str, SecretPrint]:
        """Fingerprints of the secret on boxes whose stamp records none (stamps written
        before rotation existed): read from the box's own secrets file."""
        out: dict[str, SecretPrint] = {}
        for box in live.values():
            if box.stamp is None or self.req.name in box.stamp.secrets:
                continue
            slot = await self.slot_on(box)
            if slot is not None:
                out[box.agent] = prints_of({self.req.name: slot}, self.key)[self.req.name]
        return out

    async def standings(
        self, new_fp: str | None
    ) -> tuple[dict[str, LiveBox], dict[str, BoxStanding]]:
        live = await self.read()
        read = await self.read_prints(live)
        name = self.req.name
        return live, {a: standing(b, name, new_fp, read.get(a)) for a, b in live.items()}

    async def old_value(self, live: Mapping[str, LiveBox], old_fp: str) -> str:
        """The value the boxes hold as `current`: the backend's if it matches, else read
        from a box's own secrets file (the backend may already hold the new one)."""
        backend = self.backend_value()
        if backend is not None and value_fingerprint(backend, self.key) == old_fp:
            return backend
        for box in live.values():
            slot = await self.slot_on(box)
            if slot is not None and value_fingerprint(slot.current, self.key) == old_fp:
                REDACTOR.add([slot.current])
                return slot.current
        raise RotationRefused(
            f"the value of {self.req.name!r} the boxes hold now is neither in the backend nor "
            "readable from any box: run `reconcile apply` to bring the boxes to the backend's "
            "value first"
        )

    @property
    def shown(self) -> ApplyView:
        if self.view is None:
            raise RuntimeError("a status read shows nothing")
        return self.view

    async def run(self) -> RotateResult:
        req = self.req
        new = req.value if req.value is not None else self.backend_value()
        if new is None or not new.strip():
            raise RotationRefused(
                f"no new value for {req.name!r}: pass --value-file FILE (or --stdin), or put "
                "the new value in the backend and pass --from-backend"
            )
        REDACTOR.add([new])
        new_fp = value_fingerprint(new, self.key)
        if not req.dry_run:
            # a rollout cut short (this rotation killed, say) is settled first, as apply does
            settled = await settle_first(
                ResumeRequest(req.repo, req.state_dir, wait_lock_s=req.wait_lock_s),
                self.shown.reporter, self.shown.tell, explicit=False,
                link_factory=lambda _s: self.link, trace=self.trace,
            )  # fmt: skip
            if settled is not None:
                self.shown.settled(settled)
        live, stands = await self.standings(new_fp)
        marks = {s.mark.new for s in stands.values() if s.mark is not None}
        self.pending = bool(marks)
        if marks - {new_fp}:
            ids = sorted({s.mark.rotation_id for s in stands.values() if s.mark is not None})
            raise RotationRefused(
                f"a rotation of {req.name!r} to another value is pending ({', '.join(ids)}): "
                "finish it with that value (`reconcile rotate-secret --status "
                f"{req.name}` shows where each box stands)"
            )
        unreachable = sorted(a for a, s in stands.items() if s.where in ("unreachable", "other"))
        if unreachable:
            raise RotationRefused(
                f"{len(unreachable)} box(es) cannot be read: {', '.join(unreachable[:10])}; a "
                "rotation needs every box that uses the secret: fix them, then run this again"
            )
        unchecked = sorted(a for a, s in stands.items() if s.where == "not checked")
        if unchecked:
            raise RotationRefused(
                f"{', '.join(unchecked[:10])}: the stamp records no fingerprint of "
                f"{req.name!r} (written before rotation existed, or without the fleet key): "
                "run `reconcile apply` once, then rotate"
            )
        rid = (
            next((s.mark.rotation_id for s in stands.values() if s.mark is not None), None)
            or f"rot-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
        )
        result = RotateResult(0)
        if any(s.where == "old" for s in stands.values()) or any(
            s.where == "staged" for s in stands.values()
        ):
            ahead = sorted(a for a, s in stands.items() if s.where in ("promoted", "new"))
            if ahead and any(s.where == "old" for s in stands.values()):
                # a cut-short promote was settled above and never leaves a box on the old
                # value only: these were put back by hand (or joined late). The old value
                # is still valid until the retire, so the stage goes over every box again
                # (promoted ones back to `next`), and the promote follows.
                self.shown.tell(
                    f"{len(ahead)} box(es) already hold the new {req.name} as current and "
                    "some the old one only: staging every box again, then promoting"
                )
            old_fp = next(
                (s.mark.old for s in stands.values() if s.mark is not None and s.mark.old), None
            ) or self.current_print(stands)
            old = await self.old_value(live, old_fp)
            if any(s.where == "old" for s in stands.values()):
                mark = RotationMark(rotation_id=rid, phase="staged", old=old_fp, new=new_fp)
                code = await self.phase("stage", {req.name: Slot(old, new)}, mark)
                result.exit_code = code
                if code != 0:
                    return result
                result.done.append("stage")
            if req.until == "stage" or req.dry_run:
                # a dry run shows the stage plan; the later phases depend on it having run
                return result
            mark = RotationMark(rotation_id=rid, phase="promoted", old=old_fp, new=new_fp)
            lacking = await self.lacking_next(new_fp)
            if lacking:
                raise RotationRefused(
                    f"promote refused: {len(lacking)} box(es) lack the staged value: "
                    f"{', '.join(lacking[:10])}; run this again to stage them first"
                )
            code = await self.phase("promote", {req.name: Slot(new)}, mark)
            if code != 0:
                result.exit_code = code
                return result
            result.done.append("promote")
        if req.until != "retire":
            return result
        return await self.retire(new, new_fp, rid, result)

    def current_print(self, stands: Mapping[str, BoxStanding]) -> str:
        """The one old value's fingerprint the boxes hold as current; refused if several."""
        olds = {s.current for s in stands.values() if s.where == "old" and s.current}
        if len(olds) != 1:
            raise RotationRefused(
                f"the boxes hold {len(olds)} different values of {self.req.name!r} as current: "
                "run `reconcile apply` to bring them to one value first"
            )
        return olds.pop()

    async def _retire_boxes(
        self, state: StateDir, live: Mapping[str, LiveBox], rid: str
    ) -> list[str]:
        """Under the fleet lock (renewed while it runs): retire_box on every box."""
        fleet_id = self.fleet.fleet_id
        lease, _ = await state.take_lock(
            fleet_id, ttl_s=LOCK_TTL_S, wait_s=self.req.wait_lock_s, tell=self.shown.tell
        )
        held = {"lease": lease}

        async def renew() -> None:
            while True:
                await asyncio.sleep(RENEW_EVERY_S)
                held["lease"] = state.lock.renew(held["lease"], ttl_s=LOCK_TTL_S)

        renewer = asyncio.create_task(renew())
        try:
            crew = Crew(
                holder=state.holder_id or str(Holder.here()), rollout_id=f"{rid}-retire",
                fleet_id=fleet_id, clock=SystemClock(),
                fence=next_fence(b.stamp for b in live.values()) - 1,  # no new rollout
            )  # fmt: skip
            handles = {a: self.link.box(self.source.repo.agents[a].agent) for a in self.users}
            return await _retire_all(handles, crew, self.req.name, self.fleet.rollout.parallel)
        finally:
            renewer.cancel()
            with contextlib.suppress(LockError):
                state.lock.release(held["lease"])

    async def lacking_next(self, new_fp: str) -> list[str]:
        """Boxes a promote must not go ahead without: neither staged nor already holding the
        new value as current (a promote cut short, by kill -9 say, leaves some promoted)."""
        _, stands = await self.standings(new_fp)
        return sorted(a for a, s in stands.items() if s.where not in ("staged", "promoted", "new"))

    async def phase(self, name: Phase, slots: dict[str, Slot], mark: RotationMark) -> int:
        """Stage or promote: a rollout of the secrets file only, through the apply engine."""
        req = self.req
        self.shown.tell(f"rotation {mark.rotation_id} of {req.name}: {name}")
        request = Request(
            repo=req.repo, soak_s=req.soak_s, env=req.env, secret_slots=slots,
            rotation={req.name: mark},
            waves=rotation_waves(len(self.users), req.wave_size),
            extra_gates=(auth_gate(self.fleet.gates, req.auth_max),),
        )  # fmt: skip
        p = await prepare(request, lambda _s: self.link)
        changing = [c.agent for c in p.survey.changes if c.desired_sha != c.live_sha]
        if changing:
            what = (
                "set the config change aside (`git revert`) until the rotation is done: "
                f"`reconcile apply` is refused while a rotation of {req.name!r} is pending"
                if self.pending
                else "run `reconcile apply` first"
            )
            raise RotationRefused(
                f"{len(changing)} agent(s) also have config changes pending "
                f"({', '.join(changing[:10])}): a rotation changes the secret only; {what}"
            )
        with open_state(self.fleet, req.state_dir) as state:
            self.trace.state_dir = state.path
            self.shown.show(p, [], state.path)
            if req.dry_run or p.plan.empty:
                return 0
            self.shown.confirm(p)
            ask = ApplyRequest(repo=req.repo, state_dir=req.state_dir, wait_lock_s=req.wait_lock_s)
            run = await run_locked(p, ask, state, self.shown, self.trace)
            return run.exit_code

    async def retire(self, new: str, new_fp: str, rid: str, result: RotateResult) -> RotateResult:
        """No old value on any box; the backend must hold the new value."""
        req = self.req
        backend = self.backend_value()
        source = backend_of(req.name, self.fleet, req.repo, req.env)
        stale = backend is None or value_fingerprint(backend, self.key) != new_fp
        if stale and source == "age" and not req.dry_run:
            # the repo's age file gets the new value (re-encrypted); committing it is the
            # operator's, like every change to the repo
            for line in set_summary(set_secret(req.repo, req.name, new, req.env), req.repo):
                self.shown.tell(line)
            backend = self.backend_value()
            stale = backend is None or value_fingerprint(backend, self.key) != new_fp
        if stale:
            where = {
                "env": f"set {env_name(req.name)} to the new value",
                "file": f"write the new value to the file fleet.yaml secrets.files names for "
                f"{req.name}",
            }.get(source, f"put the new value in the backend (`reconcile secrets set {req.name}`)")
            result.retire_pending = (
                f"the backend still holds another value of {req.name!r}: {where}, then run "
                f"`reconcile rotate-secret {req.name} --from-backend` to retire the old one; "
                "revoke the old key at its provider"
            )
            self.shown.tell(f"retire pending: {result.retire_pending}")
            return result
        if req.dry_run:
            self.shown.tell(f"would retire the old {req.name} on {len(self.users)} box(es)")
            return result
        live = await self.read()
        down = sorted(a for a, b in live.items() if b.state is BoxState.UNKNOWN)
        if down:
            raise RotationRefused(
                f"retire refused: {len(down)} box(es) unreachable ({', '.join(down[:10])}); "
                "the old value must leave every box: bring them back, then run this again"
            )
        with open_state(self.fleet, req.state_dir) as state:
            failed = await self._retire_boxes(state, live, rid)
        if failed:
            self.shown.tell("retire failed on:\n  " + "\n  ".join(failed))
            result.exit_code = 1
            return result
        result.done.append("retire")
        self.shown.tell(
            f"rotation {rid} of {req.name} done: every box holds the new value only; "
            "revoke the old key at its provider"
        )
        return result


async def _retire_all(
    handles: Mapping[str, BoxHandle], crew: Crew, name: str, parallel: int
) -> list[str]:
    """retire_box on every box, `parallel` at a time; the failures, named."""
    gate = asyncio.Semaphore(parallel)
    failed: list[str] = []

    async def one(agent: str, h: BoxHandle) -> None:
        async with gate:
            try:
                await retire_box(h, crew, name)
            except (BoxOpError, TransportError) as exc:
                failed.append(f"{agent}: {exc}")

    await asyncio.gather(*(one(a, h) for a, h in sorted(handles.items())))
    return sorted(failed)


async def rotate(req: RotateRequest, view: ApplyView, trace: Trace | None = None) -> RotateResult:
    """Carry out one `reconcile rotate-secret` (see the module docstring)."""
    rotation = _Rotation(req, view, trace or Trace())
    try:
        return await rotation.run()
    finally:
        await rotation.link.close()


async def rotation_status(
    repo: Path, name: str, env: Mapping[str, str] | None = None
) -> list[BoxStanding]:
    """`rotate-secret --status NAME`: where each box using NAME stands."""
    rotation = _Rotation(RotateRequest(repo=repo, name=name, env=env), None, Trace())
    try:
        live, _ = await rotation.standings(None)
        new_fp = next(
            (b.stamp.rotation[name].new for b in live.values()
             if b.stamp is not None and name in b.stamp.rotation), None,
        )  # fmt: skip
        _, stands = await rotation.standings(new_fp)
        return [stands[a] for a in sorted(stands)]
    finally:
        await rotation.link.close()
