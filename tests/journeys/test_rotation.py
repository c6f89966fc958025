"""Journey: `reconcile rotate-secret` on a demo fleet that serves traffic the whole time.

One 10-agent demo fleet (the demo repo's own fleet.yaml: gates on, 5 s soak) for the
module; its head is first reverted to what the boxes run, so that the secret is the only
change. The demo keeps `anthropic_api_key` age-encrypted in the repo; the demo provider
accepts only the keys it issued (an agent sending another fails its tasks on "auth",
counted in /_demo/counters `auth_failures`). A rotation runs stage (`next` beside
`current`, a canary of one agent, then the rest), promote (`current` = new), retire (no
old value left on any box; the repo's .age file re-encrypted, not committed).

1. A good rotation: exit 0 with zero auth failures before, during and after; every box
   holds the new value only (0600, no `next`, no kept copy, the old value in no file of
   the box), its stamp records no rotation (nor does its history: a later rollback
   restores from it) and the same per-secret fingerprint; `--status`: no rotation; no
   value in any output or the state dir; after committing the .age file, `diff
   --exit-code` is 0.
2. A key the provider never issued: exit 3, aborted in the canary wave, `next` on no
   box, every box's `current` the old value, an incident, `--status`: no rotation.
3. After `--until stage`: an `apply` from a fresh state dir of a config change to the
   agents using the secret is refused naming the rotation; a box whose staged value was
   restored away by hand is staged again before the promote (a promote never runs with a
   box lacking `next`); a box put back by hand after the promote gets every box staged
   again; the retire is refused while a box is unreachable; cleared, the re-run
   converges.
4. A wave-2 box made unreachable while the canary soaks: the stage rolls back (exit 3,
   no `next` anywhere); cleared, a re-run converges.
5. kill -9 after the canary's write in the stage, then (the stage finished by the same
   command) in the promote: the same command with the same state dir converges (a promote
   cut short leaves some boxes promoted, the rest staged).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.testing.journeys import (
    Background,
    Demo,
    FleetPool,
    Result,
    assert_converged,
    assert_untouched,
    explained,
    incidents,
    wait_until,
)

pytestmark = pytest.mark.timeout(240)

NAME = "anthropic_api_key"
AGENTS = 10


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with FleetPool(tmp_path_factory.mktemp("rot"), agents=AGENTS) as p:
        yield p


# -- helpers -----------------------------------------------------------------------------


def _fleet(fleets: FleetPool) -> Demo:
    """The module's fleet with no config change pending (the head reverted once)."""
    demo = fleets.get()
    if demo.head() == demo.head_commit:
        demo.revert_head()
    return demo


def _key(demo: Demo, tmp: Path, *, issued: bool = True) -> tuple[str, Path]:
    """A new API key in a 0600 file; issued at the demo provider unless told otherwise."""
    value = f"sk-demo-{secrets.token_hex(16)}"
    path = tmp / f"key-{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    if issued:
        demo.issue_key(value)
    return value, path


def _rotate(demo: Demo, key: Path, state: Path, *args: str, timeout: float = 150) -> Result:
    return demo.reconcile(
        "rotate-secret", NAME, "--value-file", key, "--yes", "--state-dir", state, *args,
        timeout=timeout,
    )  # fmt: skip


def _background(demo: Demo, key: Path, state: Path, *args: str) -> Background:
    return demo.background(
        "rotate-secret", NAME, "--value-file", key, "--yes", "--format", "json",
        "--state-dir", state, *args,
    )  # fmt: skip


def _auth_failures(demo: Demo) -> int:
    return sum(c.get("auth_failures", 0) for c in demo.all_counters().values())


def _held(demo: Demo) -> dict[str, dict[str, Any]]:
    """Each box's slot of NAME in its secrets file (read from outside)."""
    return {a: (t.secrets or {}).get(NAME) or {} for a, t in demo.truths().items()}


def _box_files(demo: Demo, agent: str) -> list[Path]:
    root = Path(demo.info["agents"][agent]["root"])
    return [p for p in root.rglob("*") if p.is_file()]


def _assert_new_only(demo: Demo, new: str, old: str) -> None:
    """Every box: the secrets file holds NAME = {current: new} (0600), no `next`, no kept
    copy, the old value in no file of the box; its stamp (and history) records no rotation
    of NAME; the same per-secret fingerprint everywhere; consistent and alive."""
    truths = assert_converged(demo, {a: demo.truth(a).revision or "" for a in demo.agents})
    problems, prints = [], set()
    for agent, t in sorted(truths.items()):
        slot = (t.secrets or {}).get(NAME)
        if slot != {"current": new}:
            problems.append(f"{agent}: secrets file holds {sorted((slot or {}).keys())} of "
                            f"{NAME}, not the new value alone")  # fmt: skip
        if t.secrets_mode != 0o600:
            problems.append(f"{agent}: secrets file mode {oct(t.secrets_mode or 0)}")
        files = _box_files(demo, agent)
        kept = [p.name for p in files if ".before-" in p.name]
        if kept:
            problems.append(f"{agent}: kept copies left: {kept}")
        secrets_file = demo.files(agent).secrets
        holding = [p.name for p in files if old.encode() in p.read_bytes()]
        holding += [p.name for p in files if p != secrets_file and new.encode() in p.read_bytes()]
        if holding:
            problems.append(f"{agent}: a value of {NAME} in {sorted(holding)}")
        stamp = t.stamp or {}
        if stamp.get("rotation"):
            problems.append(f"{agent}: stamp records a rotation {stamp['rotation']}")
        marked = [h["rollout_id"] for h in t.history if NAME in (h.get("rotation") or {})]
        if marked:
            problems.append(f"{agent}: stamp history entries {marked} still mark the rotation")
        fp = (stamp.get("secrets") or {}).get(NAME) or {}
        if fp.get("next"):
            problems.append(f"{agent}: stamp records a next fingerprint")
        prints.add(fp.get("current"))
    if len(prints) != 1 or None in prints:
        problems.append(f"per-secret fingerprints differ across boxes: {sorted(map(str, prints))}")
    assert not problems, "\n  ".join(["not every box holds the new value only:", *problems])


def _assert_old_only(demo: Demo, old: str) -> None:
    """Every box: NAME = {current: old}, no `next`; its stamp records no rotation pending."""
    bad = {a: sorted(s.keys()) for a, s in _held(demo).items() if s != {"current": old}}
    assert not bad, f"boxes not back on the old value alone (slots held): {bad}"
    rotating = {a: t.stamp.get("rotation") for a, t in demo.truths().items()
                if t.stamp and t.stamp.get("rotation")}  # fmt: skip
    assert not rotating, f"stamps record a rotation: {rotating}"


def _assert_no_values(values: list[str], *results: Result, state: Path | None = None) -> None:
    """No value in any command's output, nor in any file of the state dir (journal,
    incidents)."""
    for r in results:
        hits = [v[:10] for v in values if v in r.output]
        assert not hits, f"a secret value in the output of {r.args[:2]}:\n{r.describe()}"
    if state is not None and state.is_dir():
        for path in state.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not [v for v in values if v.encode() in data], f"a value in {path}"


def _status(demo: Demo) -> Result:
    return demo.reconcile("rotate-secret", NAME, "--status")


def _assert_status(demo: Demo, where: str) -> Result:
    result = _status(demo).expect(0).refuse("Traceback")
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    stands = {row[0]: " ".join(row[1:]) for row in rows if row[0] in demo.agents}
    with explained(result.describe()):
        assert set(stands) == set(demo.agents), f"--status names {sorted(stands)}"
        off = {a: s for a, s in stands.items() if not s.startswith(where)}
        assert not off, f"--status: not {where!r}: {off}"
    return result


def _wait_after(run: Background, nth: int, kind: str, timeout: float = 60, **fields: Any) -> None:
    """Wait for an event of `kind` (with `fields`) after the nth `rollout.started`."""

    def seen() -> bool:
        events = run.events
        starts = [i for i, e in enumerate(events) if e.get("event") == "rollout.started"]
        if len(starts) < nth:
            if run.proc.poll() is not None:
                raise AssertionError(f"exited before rollout {nth}\n{run.snapshot().describe()}")
            return False
        later = events[starts[nth - 1] + 1 :]
        if any(e.get("event") == kind and all(e.get(k) == v for k, v in fields.items())
               for e in later):  # fmt: skip
            return True
        if run.proc.poll() is not None:
            raise AssertionError(f"exited before {kind}\n{run.snapshot().describe()}")
        return False

    wait_until(seen, timeout=timeout, interval=0.05, what=f"{kind} {fields} in rollout {nth}")


# -- the journeys ------------------------------------------------------------------------


def test_a_good_rotation_under_traffic_has_zero_auth_failures_and_leaves_the_new_value_only(
    fleets, state_dir, tmp_path
):
    demo = _fleet(fleets)
    old = demo.secret(NAME)
    new, key = _key(demo, tmp_path)
    first = _auth_failures(demo)
    time.sleep(1.0)  # traffic before the change: the counter must not move here either
    auth_before = _auth_failures(demo)
    samples: list[int] = []
    with _background(demo, key, state_dir) as run:
        while run.proc.poll() is None:  # and during: sampled every second
            samples.append(_auth_failures(demo))
            time.sleep(1.0)
        result = run.finish(timeout=150)
    time.sleep(2.0)  # and after: every agent sends the new key, the provider accepts it
    auth_after = _auth_failures(demo)
    status = _assert_status(demo, "no rotation")
    with explained(result.describe()):
        result.expect(0, r"stage, promote, retire done").refuse("Traceback", r"rollback\.")
        assert auth_before == first, f"auth failures before the rotation: +{auth_before - first}"
        moved = sorted({s - auth_before for s in [*samples, auth_after]} - {0})
        assert not moved, f"auth failures during the rotation: +{moved}"
        started = result.first("rollout.started") or {}
        assert len(started.get("waves") or []) >= 2, f"no canary wave: {started}"
        _assert_new_only(demo, new, old)
        _assert_no_values([new, old], result, status, state=state_dir)
        assert not incidents(state_dir), "an incident from a good rotation"
        assert demo.secret(NAME) == new, "the repo's .age file does not hold the new value"
    demo.git("add", f"secrets/{NAME}.age")
    demo.git("commit", "-q", "-m", f"secret {NAME}: new value")
    diff = demo.reconcile("diff", "--exit-code")
    with explained(diff.describe()):
        diff.expect(0).refuse("Traceback")
        _assert_no_values([new, old], diff)


def test_a_key_the_provider_never_issued_aborts_in_the_canary_wave(fleets, state_dir, tmp_path):
    demo = _fleet(fleets)
    old = demo.secret(NAME)
    bad, key = _key(demo, tmp_path, issued=False)
    result = _rotate(demo, key, state_dir, "--format", "json")
    status = _assert_status(demo, "no rotation")
    with explained(result.describe(), status.describe()):
        result.expect(3).refuse("Traceback", r"rotation of \S+: .*done")
        failed = result.first("gates.failed")
        assert failed is not None and failed["wave"] == 1, "not aborted by the canary's gates"
        assert result.first("wave.started", wave=2) is None, "went past the canary wave"
        assert result.first("rollout.finished", outcome="rolled-back") is not None
        _assert_old_only(demo, old)
        found = incidents(state_dir)
        assert len(found) == 1, f"incidents: {[i.rollout_id for i in found]}"
        assert "auth" in found[0].text, "the incident does not name the auth errors"
        _assert_no_values([bad, old], result, status, state=state_dir)
        assert demo.secret(NAME) == old, "the backend changed on a failed rotation"
        assert demo.git("status", "--porcelain") == "", "the repo's work tree changed"


def _restore_by_hand(demo: Demo, agent: str, old: str) -> None:
    """Someone puts a box back by hand: NAME = {current: old} in its secrets file, and the
    stamp's secret state (fingerprints, rotation mark) as it was before the stage."""
    files = demo.files(agent)
    held = json.loads(files.secrets.read_bytes())
    held[NAME] = {"current": old}
    files.secrets.write_text(json.dumps(held, sort_keys=True), encoding="utf-8")
    files.secrets.chmod(0o600)
    stamp = json.loads(files.stamp.read_bytes())
    before = next(h for h in stamp["history"] if NAME not in (h.get("rotation") or {}))
    for k in ("secrets", "rotation", "secrets_fingerprint"):
        stamp[k] = before[k]
    files.stamp.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_refusals_while_a_rotation_is_pending_then_a_rerun_converges(fleets, tmp_path):
    demo = _fleet(fleets)
    state = tmp_path / "state"
    old = demo.secret(NAME)
    new, key = _key(demo, tmp_path)
    staged = _rotate(demo, key, state, "--until", "stage")
    with explained(staged.describe()):
        staged.expect(0, r"stage done").refuse("Traceback", "promote")
        assert {a: s.get("next") for a, s in _held(demo).items()} == dict.fromkeys(
            demo.agents, new
        ), "not every box staged"
    status = _assert_status(demo, "staged")
    rid = status.stdout.split("(")[1].split(":")[0]

    # (a) a plain apply from another machine (a fresh state dir) of a config change
    before = demo.truths()
    demo.commit_tier_config("fast", "max_tokens", 600, "tier fast: max_tokens 600")
    applied = demo.reconcile("apply", "--yes", "--state-dir", tmp_path / "fresh")
    with explained(applied.describe()):
        applied.expect(1, "rotation", rid, NAME).refuse("Traceback", "rollout.started")
        assert_untouched(before, demo.truths(), demo.agents)
    # ... nor does the rotation go on beside the config change (apply being refused, the
    # way out is to set the change aside)
    beside = _rotate(demo, key, state, "--until", "promote")
    with explained(beside.describe()):
        beside.expect(1, "config change", "git revert").refuse("Traceback", "rollout.started")
        assert_untouched(before, demo.truths(), demo.agents)
    demo.revert_head()

    # (b) a box restored by hand lacks `next`: staged again before the promote
    victim = sorted(demo.agents)[3]
    _restore_by_hand(demo, victim, old)
    promoted = _rotate(demo, key, state, "--until", "promote", "--format", "json")
    with explained(promoted.describe()):
        promoted.expect(0, r"promote done").refuse("Traceback", "retire")
        starts = [e for e in promoted.events if e.get("event") == "rollout.started"]
        assert len(starts) == 2, f"rollouts: {len(starts)} (want the re-stage, then promote)"
        assert starts[0]["waves"] == [[victim]], f"the re-stage changed {starts[0]['waves']}"
        unpromoted = {a: sorted(s) for a, s in _held(demo).items() if s != {"current": new}}
        assert not unpromoted, f"not promoted (slots held): {unpromoted}"
    _assert_status(demo, "promoted")
    # ... and one put back by hand after the promote: the re-run below stages every box
    # again (the old value is valid until the retire), promotes, retires
    late = sorted(demo.agents)[5]
    _restore_by_hand(demo, late, old)

    # (c) the retire refused while a box is unreachable
    down = sorted(demo.agents)[-1]
    demo.fault(down, "ssh-refused")
    demo.fault(down, "connection-reset")
    try:
        refused = _rotate(demo, key, state)
    finally:
        demo.clear(down)
    with explained(refused.describe()):
        refused.expect(1, down).refuse("Traceback", r"rollout\.started", r"retire done")
        assert _held(demo)[late] == {"current": old}, f"{late} changed"
    done = _rotate(demo, key, state)
    with explained(done.describe()):
        done.expect(0, "staging every box again", r"stage, promote, retire done")
        done.refuse("Traceback")
        _assert_new_only(demo, new, old)
        _assert_no_values([new, old], staged, applied, promoted, refused, done, state=state)
    demo.git("commit", "-q", "-am", f"secret {NAME}: new value")


def test_a_box_unreachable_in_the_second_wave_rolls_the_stage_back_then_a_rerun_converges(
    fleets, state_dir, tmp_path
):
    demo = _fleet(fleets)
    old = demo.secret(NAME)
    new, key = _key(demo, tmp_path)
    with _background(demo, key, state_dir) as run:
        waves = run.wait_for("rollout.started", timeout=60)["waves"]
        assert len(waves) >= 2, waves
        victim = waves[1][len(waves[1]) * 6 // 10]  # about 60% of the way through
        run.wait_for("soak.tick", wave=1, timeout=60)
        demo.fault(victim, "ssh-refused")
        demo.fault(victim, "connection-reset")
        result = run.finish(timeout=150)
    demo.clear(victim)
    with explained(f"{victim} unreachable from the canary's soak on", result.describe()):
        result.expect(3, victim).refuse("Traceback", r"rotation of \S+: .*done")
        assert result.first("rollout.finished", outcome="rolled-back") is not None
        _assert_old_only(demo, old)
        assert incidents(state_dir), "no incident"
    again = _rotate(demo, key, state_dir)
    with explained(again.describe()):
        again.expect(0, r"stage, promote, retire done").refuse("Traceback")
        _assert_new_only(demo, new, old)
        _assert_no_values([new, old], result, again, state=state_dir)
    demo.git("commit", "-q", "-am", f"secret {NAME}: new value")


def test_kill_9_in_the_stage_and_in_the_promote_then_the_same_command_converges(
    fleets, state_dir, tmp_path
):
    """kill -9 after the stage canary's write: the same command (same state dir) up to the
    stage converges; kill -9 after the promote canary's write: the same command converges."""
    demo = _fleet(fleets)
    old = demo.secret(NAME)
    new, key = _key(demo, tmp_path)
    with _background(demo, key, state_dir) as run:
        _wait_after(run, 1, "box.applied", wave=1, timeout=90)
        run.send(signal.SIGKILL)
        in_stage = run.finish(timeout=30)
    staged = _rotate(demo, key, state_dir, "--until", "stage")
    with explained(in_stage.describe(), staged.describe()):
        assert in_stage.rc == -signal.SIGKILL, "not killed"
        staged.expect(0, r"stage done").refuse("Traceback")
        assert {a: s.get("next") for a, s in _held(demo).items()} == dict.fromkeys(
            demo.agents, new
        ), "not every box staged"
    with _background(demo, key, state_dir) as run:  # the promote is its first rollout
        _wait_after(run, 1, "box.applied", wave=1, timeout=90)
        run.send(signal.SIGKILL)
        in_promote = run.finish(timeout=30)
    again = _rotate(demo, key, state_dir)
    with explained(in_promote.describe(), again.describe()):
        assert in_promote.rc == -signal.SIGKILL, "not killed"
        assert "promote" in in_promote.stderr, "the killed run was not promoting"
        again.expect(0, r"retire done").refuse("Traceback")
        _assert_new_only(demo, new, old)
        _assert_no_values([new, old], in_stage, staged, in_promote, again, state=state_dir)
    demo.git("commit", "-q", "-am", f"secret {NAME}: new value")
