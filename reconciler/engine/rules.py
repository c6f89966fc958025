"""The rollout's last step: ship the compiled alert rules to the Prometheus box.

    lease -> compare the manifest (CAS) -> keep the old files in history -> write each
          rule file atomically, remove our stale ones -> manifest -> reload
          -> verify /api/v1/rules -> stamp -> release

The Prometheus box is reached like an agent's box (SSH, host key, lease, stamp,
history, allowed paths), with the fleet's *manifest* in place of a config file:
`<rules_dir>/.reconciler-<fleet_id>.rules.json` lists the rule files this fleet
wrote and the groups they hold, so only our files are ever replaced or removed.
Verification waits until every group of ours is loaded with its new content hash
(the `reconciler_group_hash` label its rules carry, alerts/compile.py) and none of
our stale groups remains; groups that are not ours are left alone. A reload
Prometheus refuses, or rules that do not show up, put the previous files back and
reload again: the step is `refused`, with Prometheus's own error. With
`check_command` (e.g. promtool check rules) the box checks the new files before the
reload, and a refusal names the rule and the parse error. Agents' waves are never
undone for it.

Crash safety. The manifest is the commit point: it records each file's sha256, and
the rule files are written (one at a time) before it, the previous ones kept in the
box's history by their sha first. So after a kill anywhere in the step the manifest
names either the old rules or the new ones, and "before" (what a refusal restores)
is taken by the manifest's shas, never from whatever is on disk: a file whose disk
bytes match the manifest's sha is used as is, otherwise its bytes come from history
by that sha (a run killed between its file writes and its manifest left newer bytes
there); a file the manifest does not name (written by such a cut-short run) is
removed on restore. A manifest of an older version without shas (or a sha found
nowhere) falls back to the bytes on disk. The stamp comes last, so a run killed
after its manifest or its reload leaves stamp != manifest: the next plan has a rules
step, and `reconcile apply` re-ships (writing only what differs), reloads, verifies
and stamps - the box converges on the new rules. Each step boundary
(`RULES_BOUNDARIES`) is offered to `ShipOptions.on_boundary` (the crash tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final, Literal

from reconciler.alerts import GROUP_HASH_LABEL
from reconciler.config.boundary import normal, under
from reconciler.engine.boxops import (
    BoxHandle,
    BoxOpError,
    keep_in_history,
    read_now,
    release_lease,
    sha256_hex,
    take_lease,
    write_stamp,
)
from reconciler.errors import BoxError
from reconciler.model.agent import Agent
from reconciler.model.box import Stamp
from reconciler.model.fleet import Connection, PrometheusBox
from reconciler.plan.model import RulesStep
from reconciler.render.canonical import RENDERER_VERSION
from reconciler.render.stamp import rfc3339
from reconciler.rollout.clock import Clock
from reconciler.transport import promrules
from reconciler.transport.base import TransportError

BOX_NAME: Final = "prometheus"
HASH_LABEL: Final = GROUP_HASH_LABEL  # on a rule of each group (alerts/compile.py)
POLL_S: Final = 0.25
MAX_SAID: Final = 2000  # characters of a command's output kept in a refusal
Status = Literal["shipped", "refused", "failed", "skipped"]
# The step's boundaries, in order (`rules.write` once before each rule file written).
RULES_BOUNDARIES: Final = (
    "rules.lease",
    "rules.write",
    "rules.manifest",
    "rules.reload",
    "rules.verify",
    "rules.stamp",
    "rules.release",
)


@dataclass(frozen=True, slots=True)
class RulesTarget:
    """What is to be shipped: the rule files by name and each group's content hash."""

    fleet_id: str
    files: Mapping[str, bytes]
    groups: Mapping[str, str]

    @property
    def prefix(self) -> str:
        """The group-name prefix of this fleet's groups (`reconciler/<fleet_id>/`)."""
        return f"reconciler/{self.fleet_id}/"

    def manifest(self) -> bytes:
        """The manifest's bytes: our files (name -> sha256) and groups (name -> hash)."""
        doc = {
            "fleet_id": self.fleet_id,
            "files": {n: sha256_hex(b) for n, b in sorted(self.files.items())},
            "groups": dict(sorted(self.groups.items())),
        }
        return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest as read back from the box (unreadable: empty)."""

    files: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes | None) -> Manifest:
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            return cls()
        files = doc.get("files") if isinstance(doc, dict) else None
        groups = doc.get("groups") if isinstance(doc, dict) else None
        if isinstance(files, list):  # an older manifest: names only, no sha ("")
            files = dict.fromkeys(files, "")
        if not isinstance(files, dict):
            files = {}
        return cls(
            {k: v for k, v in files.items() if _plain_name(k) and isinstance(v, str)},
            {k: v for k, v in (groups or {}).items() if isinstance(v, str)},
        )


def _plain_name(name: object) -> bool:
    """A file name of ours: one path part, a rule file (never `..`, never a dotfile)."""
    return (
        isinstance(name, str)
        and "/" not in name
        and not name.startswith(".")
        and name.endswith(".rules.yml")
    )


def manifest_path(box: PrometheusBox, fleet_id: str) -> str:
    return posixpath.join(box.rules_dir, f".reconciler-{fleet_id}.rules.json")


def box_label(box: PrometheusBox, conn: Connection) -> str:
    """user@host:port:rules_dir, as the plan shows it."""
    return f"{box.user or conn.user}@{box.host}:{box.port or conn.port}:{box.rules_dir}"


def rules_agent(box: PrometheusBox, conn: Connection, fleet_id: str) -> Agent:
    """The Prometheus box as the transport and box operations see a box: its SSH login
    (fleet connection defaults filled in) and the manifest in place of a config file."""
    return Agent(
        name=BOX_NAME, tier=BOX_NAME, shard=BOX_NAME, host=box.host,
        port=box.port or conn.port, user=box.user or conn.user, key=box.key or conn.key,
        known_hosts=box.known_hosts or conn.known_hosts,
        config_path=manifest_path(box, fleet_id),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RulesLive:
    """The Prometheus box as read before planning: its manifest and stamp."""

    manifest: bytes | None
    stamp_sha: str | None


async def read_rules_box(h: BoxHandle) -> RulesLive:
    now = await read_now(h)
    return RulesLive(now.file, now.stamp.config_sha256 if now.stamp else None)


def rules_step(label: str, target: RulesTarget, live: RulesLive) -> RulesStep | None:
    """The plan's rules step; None when the box already holds exactly these rules."""
    manifest = target.manifest()
    sha = sha256_hex(manifest)
    if live.manifest == manifest and live.stamp_sha == sha:
        return None
    old = Manifest.parse(live.manifest)
    return RulesStep(
        box=label,
        target_sha=sha,
        pre_sha=sha256_hex(live.manifest) if live.manifest is not None else None,
        files=tuple(sorted(target.files)),
        removed=tuple(sorted(set(old.files) - set(target.files))),
        groups=tuple(sorted(target.groups)),
    )


@dataclass(frozen=True, slots=True)
class ShipOptions:
    """How one rollout ships: its identity, the box's settings, what paths are allowed."""

    box: PrometheusBox
    rollout_id: str
    holder: str
    revision: str
    fence: int
    lease_ttl_s: float
    allowed_paths: tuple[str, ...]
    http_timeout_s: float = 10.0
    # Told each step boundary (RULES_BOUNDARIES) before the step runs: the crash tests.
    on_boundary: Callable[[str, str | None], None] | None = None
    # Prometheus's HTTP API (transport/promrules.py); unit tests of the step's edge cases
    # on a FakeBox pass stand-ins (the journey tests/alerts_ship/ uses a real Prometheus).
    post_reload: Callable[..., Awaitable[str | None]] = promrules.reload
    read_loaded: Callable[..., Awaitable[dict[str, promrules.LoadedGroup]]] = (
        promrules.loaded_groups
    )


@dataclass(frozen=True, slots=True)
class RulesOutcome:
    """How the rules step ended.

    shipped: Prometheus loaded every group of ours with its new hash. refused: Prometheus
    refused them (`error` is its own message); the previous rules were put back
    (`restored`). failed: the box could not be reached or written (nothing, or the
    previous rules, left in place). skipped: not run (the agents' rollout did not finish).
    """

    status: Status
    message: str
    error: str | None = None
    restored: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "shipped"


class _Refused(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _at(opts: ShipOptions, boundary: str) -> None:
    if opts.on_boundary is not None:
        opts.on_boundary(boundary, BOX_NAME)


async def ship_rules(
    h: BoxHandle, target: RulesTarget, step: RulesStep, opts: ShipOptions, clock: Clock
) -> RulesOutcome:
    """Ship `target` to the Prometheus box behind `h` (see the module docstring)."""
    _at(opts, "rules.lease")
    try:
        await take_lease(
            h, holder=opts.holder, rollout_id=opts.rollout_id, ttl_s=opts.lease_ttl_s,
            now=clock.now(), fence=opts.fence,
        )  # fmt: skip
    except (BoxError, TransportError) as exc:
        return RulesOutcome("failed", f"rules not shipped: {exc}")
    try:
        return await _ship_leased(h, target, step, opts, clock)
    finally:
        _at(opts, "rules.release")
        # An expired lease of ours is broken by the next run.
        with contextlib.suppress(BoxError, TransportError):
            await release_lease(h, rollout_id=opts.rollout_id, taken=True)


async def _before(
    h: BoxHandle, names: list[str], old: Manifest, on_disk: Mapping[str, bytes | None]
) -> dict[str, bytes | None]:
    """The rules the old manifest names, by its shas (see the module docstring): the disk
    bytes when they match, else history's copy; None for a file it does not name."""

    async def one(name: str) -> bytes | None:
        if name not in old.files:
            return None  # new, or left by a run killed before its manifest: removed
        sha, data = old.files[name], on_disk.get(name)
        if not sha or (data is not None and sha256_hex(data) == sha):
            return data
        kept = await h.box.read_file(h.paths.history_file(sha))
        if kept is not None and sha256_hex(kept) == sha:
            return kept
        return data  # not in history either: the best there is

    return dict(zip(names, await asyncio.gather(*map(one, names)), strict=True))


async def _ship_leased(
    h: BoxHandle, target: RulesTarget, step: RulesStep, opts: ShipOptions, clock: Clock
) -> RulesOutcome:
    box = opts.box
    rules_dir = PurePosixPath(box.rules_dir)
    try:
        await _check_allowed(h, rules_dir, opts.allowed_paths)
        now = await read_now(h)
        if now.file_sha not in (step.pre_sha, step.target_sha):
            raise BoxOpError(
                h.name, "stamp-check",
                f"{h.paths.config} changed since the plan (now {str(now.file_sha)[:12]}, "
                f"plan saw {str(step.pre_sha)[:12]}); make a new plan",
            )  # fmt: skip
        old = Manifest.parse(now.file)
        names = sorted(set(old.files) | set(target.files))
        on_disk = dict(zip(names, await asyncio.gather(
            *(h.box.read_file(rules_dir / n) for n in names)), strict=True))  # fmt: skip
        before = await _before(h, names, old, on_disk)
    except (BoxError, TransportError) as exc:
        return RulesOutcome("failed", f"rules not shipped, nothing written: {exc}")
    try:
        await asyncio.gather(*(keep_in_history(h, b) for b in before.values() if b is not None))
        if now.file is not None:
            await keep_in_history(h, now.file)
        for n, b in sorted(target.files.items()):  # one at a time: the crash tests cut in
            if on_disk.get(n) != b:
                _at(opts, "rules.write")
                await h.box.write_atomic(rules_dir / n, b, mode=0o644)
        await asyncio.gather(
            *(h.box.remove(rules_dir / n) for n in old.files if n not in target.files)
        )
        manifest = target.manifest()
        _at(opts, "rules.manifest")
        await h.box.write_atomic(h.paths.config, manifest, mode=0o644)
        await _check(h, box, [rules_dir / n for n in sorted(target.files)])
        _at(opts, "rules.reload")
        await _reload(h, box, opts)
        _at(opts, "rules.verify")
        await _verify(h, box, target, opts, clock)
    except _Refused as exc:
        restored = await _restore(h, rules_dir, before, now.file, box, opts)
        return RulesOutcome(
            "refused",
            "Prometheus refused the new alert rules; "
            + ("the previous rules were restored" if restored else "RESTORING THEM FAILED")
            + "; the agents' waves are not undone for it",
            error=exc.error,
            restored=restored,
        )
    except (BoxError, TransportError) as exc:
        restored = await _restore(h, rules_dir, before, now.file, box, opts)
        what = "the previous rules were restored" if restored else "RESTORING THEM FAILED"
        return RulesOutcome("failed", f"rules not shipped: {exc}; {what}", restored=restored)
    stamp = Stamp(
        fleet_id=target.fleet_id, agent=h.name, revision=opts.revision,
        config_sha256=sha256_hex(manifest), renderer_version=RENDERER_VERSION,
        applied_at=rfc3339(clock.now()), rollout_id=opts.rollout_id, outcome="applied",
        fence=opts.fence,
    )  # fmt: skip
    _at(opts, "rules.stamp")
    try:
        await write_stamp(h, stamp)
    except (BoxError, TransportError) as exc:
        return RulesOutcome("failed", f"rules loaded, but the stamp was not written: {exc}")
    return RulesOutcome(
        "shipped", f"alert rules shipped to {step.box}: {len(target.groups)} group(s) loaded"
    )


async def _check_allowed(h: BoxHandle, rules_dir: PurePosixPath, allowed: tuple[str, ...]) -> None:
    real = str(await h.box.realpath(rules_dir))
    if not any(real == normal(d) or under(real, normal(d)) for d in allowed):
        raise BoxOpError(
            h.name, "allowed-paths",
            f"rules_dir {rules_dir} is {real} on the box, under none of "
            f"connection.allowed_paths ({', '.join(allowed) or 'none set'})",
        )  # fmt: skip


async def _check(h: BoxHandle, box: PrometheusBox, files: list[PurePosixPath]) -> None:
    """The box's own check of the new files (check_command), before Prometheus reads them."""
    if box.check_command is None:
        return
    done = await h.box.run([*box.check_command, *map(str, files)], timeout=h.command_timeout)
    if done.exit_status != 0:
        said = "\n".join(x.strip() for x in (done.stdout, done.stderr) if x.strip())
        raise _Refused(
            f"{' '.join(box.check_command)} exited {done.exit_status}: {said[-MAX_SAID:]}"
        )


async def _reload(h: BoxHandle, box: PrometheusBox, opts: ShipOptions) -> None:
    if box.reload_command is not None:
        done = await h.box.run(box.reload_command, timeout=h.command_timeout)
        if done.exit_status != 0:
            raise _Refused(
                f"reload command exited {done.exit_status}: "
                f"{(done.stderr or done.stdout).strip()[-MAX_SAID:]}"
            )
        return
    error = await opts.post_reload(h.name, box.url, timeout=opts.http_timeout_s)
    if error is not None:
        raise _Refused(error)


def _mismatch(target: RulesTarget, loaded: Mapping[str, promrules.LoadedGroup]) -> str | None:
    """What is not yet as wanted in Prometheus's loaded groups; None when all is."""
    for name, digest in sorted(target.groups.items()):
        got = loaded.get(name)
        if got is None:
            return f"group {name} is not loaded"
        if got.hashes != {digest}:
            seen = ", ".join(sorted(got.hashes)) or "none"
            return f"group {name} is loaded with hash {seen}, not {digest}"
    stale = sorted(n for n in loaded if n.startswith(target.prefix) and n not in target.groups)
    if stale:
        return f"stale group(s) of ours still loaded: {', '.join(stale)}"
    return None


async def _verify(
    h: BoxHandle, box: PrometheusBox, target: RulesTarget, opts: ShipOptions, clock: Clock
) -> None:
    deadline = clock.monotonic() + box.verify_timeout_s
    while True:
        loaded = await opts.read_loaded(
            h.name, box.url, hash_label=HASH_LABEL, timeout=opts.http_timeout_s
        )
        why = _mismatch(target, loaded)
        if why is None:
            return
        if clock.monotonic() >= deadline:
            raise _Refused(f"not loaded within {box.verify_timeout_s:g}s: {why}")
        await clock.sleep(POLL_S)


async def _restore(
    h: BoxHandle,
    rules_dir: PurePosixPath,
    before: Mapping[str, bytes | None],
    manifest: bytes | None,
    box: PrometheusBox,
    opts: ShipOptions,
) -> bool:
    """Put the files (and manifest) back as they were, and reload; True when it worked."""
    try:
        await asyncio.gather(*(
            h.box.remove(rules_dir / n) if b is None
            else h.box.write_atomic(rules_dir / n, b, mode=0o644)
            for n, b in before.items()
        ))  # fmt: skip
        if manifest is None:
            await h.box.remove(h.paths.config)
        else:
            await h.box.write_atomic(h.paths.config, manifest, mode=0o644)
        await _reload(h, box, opts)
    except (BoxError, TransportError, _Refused):
        return False
    return True
