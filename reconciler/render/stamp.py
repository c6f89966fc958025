"""The state stamp the product writes after an apply or a rollback (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.model.box import Outcome, RotationMark, SecretPrint, Stamp, StampHistoryEntry
from reconciler.render.canonical import RENDERER_VERSION


def rfc3339(when: datetime) -> str:
    """UTC time as the stamp writes it: 2026-11-23T01:02:03Z (naive times are taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class SecretState:
    """What a stamp records of the box's secrets file: the whole file's keyed fingerprint,
    each secret's, and the rotations pending."""

    fingerprint: str | None = None
    prints: dict[str, SecretPrint] = field(default_factory=dict)
    rotation: dict[str, RotationMark] = field(default_factory=dict)

    @classmethod
    def of(cls, stamp: Stamp | StampHistoryEntry | None) -> SecretState:
        if stamp is None:
            return cls()
        return cls(stamp.secrets_fingerprint, dict(stamp.secrets), dict(stamp.rotation))


def secrets_before(current: Stamp | None, rollout_id: str) -> SecretState:
    """The secret state a restore by `rollout_id` puts back in the stamp: the box's state
    before that rollout (its history entry before ours when the stamp is ours)."""
    if current is not None and current.rollout_id == rollout_id and current.outcome == "applied":
        earlier = current.history[1] if len(current.history) > 1 else None
        return SecretState.of(earlier)
    return SecretState.of(current)


def make_stamp(
    *,
    fleet_id: str,
    agent: str,
    revision: str,
    config_sha256: str,
    rollout_id: str,
    outcome: Outcome,
    now: datetime,
    previous: Stamp | None = None,
    keep: int = 5,
    secrets_fingerprint: str | None = None,
    blocked_revision: str | None = None,
    fence: int = 0,
    secrets: SecretState | None = None,
) -> Stamp:
    """The stamp for a box that now runs `config_sha256` of `revision`.

    The history keeps the last `keep` revisions (this one first), so that a revert
    a few steps back can restore from the box's own history directory.
    """
    applied_at = rfc3339(now)
    state = secrets if secrets is not None else SecretState(secrets_fingerprint)
    entry = StampHistoryEntry(
        revision=revision,
        config_sha256=config_sha256,
        outcome=outcome,
        applied_at=applied_at,
        rollout_id=rollout_id,
        secrets_fingerprint=state.fingerprint,
        secrets=state.prints,
        rotation=state.rotation,
    )
    history = [entry, *(previous.history if previous else [])][:keep]
    return Stamp(
        fleet_id=fleet_id,
        agent=agent,
        revision=revision,
        config_sha256=config_sha256,
        renderer_version=RENDERER_VERSION,
        applied_at=applied_at,
        rollout_id=rollout_id,
        outcome=outcome,
        history=history,
        secrets_fingerprint=state.fingerprint,
        blocked_revision=blocked_revision,
        fence=fence,
        secrets=state.prints,
        rotation=state.rotation,
    )


def blocked_after(
    previous: Stamp | None,
    *,
    outcome: Outcome,
    revision: str | None,
    verdict_on: str | None = None,
) -> str | None:
    """The `blocked_revision` a new stamp carries: the one rule for when a block clears.

    A verdict (a failed gate or watchdog) blocks the revision it condemned. Otherwise
    the previous stamp's block is carried, except that applying the blocked revision
    itself (on purpose, with --force) and having it hold clears it.
    """
    if verdict_on is not None:
        return verdict_on
    carried = previous.blocked_revision if previous else None
    if outcome == "applied" and carried == revision:
        return None
    return carried


def restamp_needed(
    current: Stamp | None, *, sha: str, rollout_id: str, blocked: str | None
) -> bool:
    """False when the box's stamp already records this restore (a re-run writes nothing)."""
    return not (
        current is not None
        and current.config_sha256 == sha
        and current.rollout_id == rollout_id
        and current.outcome == "rolled-back"
        and current.blocked_revision == blocked
    )


def next_fence(stamps: Iterable[Stamp | None], *, floor: int = 0) -> int:
    """The fencing number of a new rollout: one more than any seen on the boxes (or `floor`,
    the highest the state backend handed out)."""
    return max([floor, *(s.fence for s in stamps if s is not None)]) + 1


def fenced_out(current: Stamp | None, fence: int) -> str | None:
    """Why a writer holding `fence` must not touch a box whose stamp is `current`: a newer
    rollout (higher number) wrote it. None: it may."""
    if current is not None and current.fence > fence:
        return (
            f"a newer rollout wrote this box ({current.rollout_id}, fence {current.fence} > "
            f"ours {fence}); left alone"
        )
    return None


def restore_refusal(
    current: Stamp | None, *, rollout_id: str, pre_sha: str, fence: int
) -> str | None:
    """Why a restore must leave the box alone, or None: it may restore.

    A restore puts back what *this* rollout changed. The box must still be as this
    rollout left it (its stamp names this rollout) or still in the state before it (the
    stamp records the old config); a box another rollout has written since was moved on.
    """
    if (why := fenced_out(current, fence)) is not None:
        return why
    if current is None or current.rollout_id == rollout_id or current.config_sha256 == pre_sha:
        return None
    return (
        f"moved by rollout {current.rollout_id} (revision {current.revision[:12]}) since this "
        "rollout changed it; left alone"
    )


def already_there(
    current: Stamp | None,
    file_sha: str | None,
    *,
    sha: str,
    revision: str,
    secrets: tuple[bool, str | None] = (False, None),
) -> bool:
    """The box already holds and is stamped with exactly this target, applied by some
    rollout: a second apply of the same head has nothing to do there.

    `secrets`: (the secrets file is to be written, its keyed fingerprint). When it is,
    the box is there only if its stamp records that very fingerprint (unknown: not).
    """
    writing, fingerprint = secrets
    if writing and (
        fingerprint is None or current is None or current.secrets_fingerprint != fingerprint
    ):
        return False
    return (
        current is not None
        and current.outcome == "applied"
        and current.config_sha256 == sha
        and current.revision == revision
        and current.blocked_revision != revision  # marked by a verdict: not "done"
        and file_sha == sha
    )
