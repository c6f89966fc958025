"""Ship the compiled alertmanager.yml to the Alertmanager box (the rollout's last step).

    lease -> the old file kept in history (0600) -> the new one written 0600, atomically,
          with the routes' secret URLs resolved -> POST /-/reload
          -> verify GET /api/v2/status -> stamp -> release

Verification: Alertmanager's /api/v2/status returns its configuration re-marshalled
(`config.original` drops comments, so a hash comment cannot be seen, and equal bytes are
never given back), so the shipped file carries an inert *marker receiver*
`reconciler-sha256-<16 hex>` (the sha256 of the rendered file, placeholders not
resolved, so it says nothing about the secrets) that no route uses; the step waits until
config.original names it. A refused reload, or a file that does not show up, puts the
previous file back and reloads again: the step is `refused`, with Alertmanager's own
error (any secret value in it replaced). Agents' waves are never undone for it.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from reconciler.alerts import resolve_alertmanager
from reconciler.config.boundary import normal, under
from reconciler.engine.boxops import (
    BoxHandle,
    BoxOpError,
    read_now,
    release_lease,
    sha256_hex,
    take_lease,
    write_stamp,
)
from reconciler.engine.rules import POLL_S, RulesOutcome
from reconciler.errors import BoxError
from reconciler.model.agent import Agent
from reconciler.model.box import Stamp
from reconciler.model.fleet import AlertmanagerBox, Connection
from reconciler.render.canonical import RENDERER_VERSION
from reconciler.render.stamp import rfc3339
from reconciler.rollout.clock import Clock
from reconciler.transport import promrules
from reconciler.transport.base import TransportError

BOX_NAME: Final = "alertmanager"
MARKER_PREFIX: Final = "reconciler-sha256-"
MODE: Final = 0o600  # the file holds the routes' secret URLs
HIDDEN: Final = "<secret>"


@dataclass(frozen=True, slots=True)
class AlertmanagerTarget:
    """The alertmanager.yml to ship: rendered bytes with the marker, and its secrets."""

    text: bytes  # placeholders, not resolved: safe to keep, hash and compare
    marker: str
    secrets: frozenset[str]

    @property
    def sha(self) -> str:
        return sha256_hex(self.text)


def marked(rendered: bytes, secrets: frozenset[str]) -> AlertmanagerTarget:
    """The rendered alertmanager.yml with the marker receiver appended to `receivers:`
    (the last top-level key alerts/route.py writes)."""
    text = rendered.decode()
    at = text.find("\nreceivers:\n")
    tail = text[at + len("\nreceivers:\n") :] if at >= 0 else ""
    if at < 0 or any(ln and ln[0] not in " -" for ln in tail.splitlines()):
        raise ValueError("alertmanager.yml does not end with its receivers: list")
    marker = MARKER_PREFIX + sha256_hex(rendered)[:16]
    if not text.endswith("\n"):
        text += "\n"
    return AlertmanagerTarget(f'{text}- name: "{marker}"\n'.encode(), marker, secrets)


def box_label(box: AlertmanagerBox, conn: Connection) -> str:
    """user@host:port:config_path, as the apply output shows it."""
    return f"{box.user or conn.user}@{box.host}:{box.port or conn.port}:{box.config_path}"


def alertmanager_agent(box: AlertmanagerBox, conn: Connection) -> Agent:
    """The Alertmanager box as the transport and box operations see a box."""
    return Agent(
        name=BOX_NAME, tier=BOX_NAME, shard=BOX_NAME, host=box.host,
        port=box.port or conn.port, user=box.user or conn.user, key=box.key or conn.key,
        known_hosts=box.known_hosts or conn.known_hosts, config_path=box.config_path,
    )  # fmt: skip


async def needs_shipping(h: BoxHandle, target: AlertmanagerTarget) -> bool:
    """Whether the box lacks this file: no file, or its stamp names another."""
    now = await read_now(h)
    return now.file is None or now.stamp is None or now.stamp.config_sha256 != target.sha


@dataclass(frozen=True, slots=True)
class AlertmanagerOptions:
    """How one rollout ships alertmanager.yml."""

    box: AlertmanagerBox
    rollout_id: str
    holder: str
    revision: str
    fence: int
    lease_ttl_s: float
    allowed_paths: tuple[str, ...]
    fleet_id: str
    http_timeout_s: float = 10.0
    post_reload: Callable[..., Awaitable[str | None]] = promrules.reload
    has_marker: Callable[..., Awaitable[bool]] = promrules.alertmanager_has


class _Refused(Exception):
    pass


def hide(text: str, values: Mapping[str, str]) -> str:
    """`text` with every secret value replaced (longest first)."""
    for value in sorted(values.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, HIDDEN)
    return text


def resolve(target: AlertmanagerTarget, values: Mapping[str, str]) -> bytes:
    """The file as shipped: the marked text with the secret URLs in place."""
    return resolve_alertmanager(target.text, target.secrets, values)


async def ship_alertmanager(
    h: BoxHandle,
    target: AlertmanagerTarget,
    values: Mapping[str, str],
    opts: AlertmanagerOptions,
    clock: Clock,
) -> RulesOutcome:
    """Ship `target` (secrets resolved from `values`) to the box behind `h`."""
    try:
        await take_lease(
            h, holder=opts.holder, rollout_id=opts.rollout_id, ttl_s=opts.lease_ttl_s,
            now=clock.now(), fence=opts.fence,
        )  # fmt: skip
    except (BoxError, TransportError) as exc:
        return RulesOutcome("failed", f"alertmanager.yml not shipped: {hide(str(exc), values)}")
    try:
        return await _ship_leased(h, target, values, opts, clock)
    finally:
        with contextlib.suppress(BoxError, TransportError):
            await release_lease(h, rollout_id=opts.rollout_id, taken=True)


async def _ship_leased(
    h: BoxHandle,
    target: AlertmanagerTarget,
    values: Mapping[str, str],
    opts: AlertmanagerOptions,
    clock: Clock,
) -> RulesOutcome:
    path = PurePosixPath(h.paths.config)
    try:
        await _check_allowed(h, path, opts.allowed_paths)
        now = await read_now(h)
    except (BoxError, TransportError) as exc:
        msg = f"alertmanager.yml not shipped, nothing written: {hide(str(exc), values)}"
        return RulesOutcome("failed", msg)
    before = now.file
    try:
        if before is not None:
            keep = h.paths.history_file(sha256_hex(before))
            if await h.box.stat(keep) is None:
                await h.box.write_atomic(keep, before, mode=MODE)
        await h.box.write_atomic(path, resolve(target, values), mode=MODE)
        await _reload(h, opts)
        await _verify(h, target, opts, clock)
    except _Refused as exc:
        restored = await _restore(h, path, before, opts)
        return RulesOutcome(
            "refused",
            "Alertmanager refused the new alertmanager.yml; "
            + ("the previous file was restored" if restored else "RESTORING IT FAILED")
            + "; the agents' waves are not undone for it",
            error=hide(str(exc), values),
            restored=restored,
        )
    except (BoxError, TransportError) as exc:
        restored = await _restore(h, path, before, opts)
        what = "the previous file was restored" if restored else "RESTORING IT FAILED"
        msg = f"alertmanager.yml not shipped: {hide(str(exc), values)}; {what}"
        return RulesOutcome("failed", msg, restored=restored)
    stamp = Stamp(
        fleet_id=opts.fleet_id, agent=h.name, revision=opts.revision,
        config_sha256=target.sha, renderer_version=RENDERER_VERSION,
        applied_at=rfc3339(clock.now()), rollout_id=opts.rollout_id, outcome="applied",
        fence=opts.fence,
    )  # fmt: skip
    try:
        await write_stamp(h, stamp)
    except (BoxError, TransportError) as exc:
        msg = f"alertmanager.yml loaded, but the stamp was not written: {hide(str(exc), values)}"
        return RulesOutcome("failed", msg)
    return RulesOutcome("shipped", f"alertmanager.yml shipped to {h.agent.host}: {target.marker}")


async def _check_allowed(h: BoxHandle, path: PurePosixPath, allowed: tuple[str, ...]) -> None:
    real = posixpath.join(str(await h.box.realpath(path.parent)), path.name)
    if not any(real == normal(d) or under(real, normal(d)) for d in allowed):
        raise BoxOpError(
            h.name, "allowed-paths",
            f"alertmanager config_path {path} is {real} on the box, under none of "
            f"connection.allowed_paths ({', '.join(allowed) or 'none set'})",
        )  # fmt: skip


async def _reload(h: BoxHandle, opts: AlertmanagerOptions) -> None:
    error = await opts.post_reload(
        h.name, opts.box.url, timeout=opts.http_timeout_s, server="alertmanager"
    )
    if error is not None:
        raise _Refused(error)


async def _verify(
    h: BoxHandle, target: AlertmanagerTarget, opts: AlertmanagerOptions, clock: Clock
) -> None:
    deadline = clock.monotonic() + opts.box.verify_timeout_s
    while not await opts.has_marker(
        h.name, opts.box.url, target.marker, timeout=opts.http_timeout_s
    ):
        if clock.monotonic() >= deadline:
            raise _Refused(
                f"not loaded within {opts.box.verify_timeout_s:g}s: /api/v2/status does not"
                f" name {target.marker}"
            )
        await clock.sleep(POLL_S)


async def _restore(
    h: BoxHandle, path: PurePosixPath, before: bytes | None, opts: AlertmanagerOptions
) -> bool:
    """Put the previous file back (or remove ours) and reload; True when it worked."""
    try:
        if before is None:
            await h.box.remove(path)
        else:
            await h.box.write_atomic(path, before, mode=MODE)
            error = await opts.post_reload(
                h.name, opts.box.url, timeout=opts.http_timeout_s, server="alertmanager"
            )
            if error is not None:
                return False
    except (BoxError, TransportError):
        return False
    return True
