"""Kill `reconcile apply` at each step of a config_path move; `reconcile resume` settles it.

The demo fleet's head is reverted to what the boxes run, then one agent's config_path
moves (/etc/agent/config.yaml -> /etc/agent/config-next.yaml, within allowed_paths): the
rollout has that one box. Apply is killed before the new path's write, before its
activation, before and after its stamp, before the rollout's end, and while the old path
is being cleared (after the journal recorded the rollout done); then `reconcile resume`
runs, with the journal and with it deleted. The moved agent must end wholly on one path:

- the new path: config, secrets and a stamp there (file == stamp == loaded), the old
  path's config, secrets, stamp and history gone (said as `box.moved`);
- the old path: config, secrets and stamp as before the move, the new path holding none
  of this rollout's files.

No lease is left on either path, no config is lost (the old config is kept in the
history of the path the box ends on), every other box is exactly as it was, and a
second resume finds nothing to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.journal.db import FILE_NAME as JOURNAL_FILE
from reconciler.model.box import BoxPaths, parse_stamp

from .conftest import cli, git
from .test_crash import apply_args

pytestmark = pytest.mark.timeout(240)

OLD, NEW = "/etc/agent/config.yaml", "/etc/agent/config-next.yaml"


def move_one(fleet: DemoFleet) -> str:
    """Revert the head (the boxes run it), then move one agent's config file; its name."""
    git(fleet.repo, "revert", "--no-edit", "HEAD")
    name = fleet.tier("smart")[0].name
    for shard in sorted((fleet.repo / "shards").glob("*.yaml")):
        text = shard.read_text(encoding="utf-8")
        entry = f"  - name: {name}\n    tier: smart\n"
        if entry in text:
            shard.write_text(text.replace(entry, f"{entry}    config_path: {NEW}\n"), "utf-8")
            git(fleet.repo, "commit", "-qam", f"{name}: move its config file")
            return name
    raise AssertionError(f"{name} not found in the shard files")


def files(fleet: DemoFleet, name: str, config: str) -> dict[str, Path]:
    box = fleet.box(name)
    p = BoxPaths.of(config)
    return {
        "config": box.path(p.config),
        "secrets": box.path(p.secrets),
        "stamp": box.path(p.stamp),
        "history": box.path(p.history_dir),
        "lease": box.path(p.lease_dir),
    }


def sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def snapshot(fleet: DemoFleet) -> dict[str, tuple[str | None, bytes | None]]:
    """Every box's config sha and stamp bytes at its demo path (the old one)."""
    out = {}
    for n in fleet.names:
        f = files(fleet, n, OLD)
        out[n] = (sha(f["config"]), f["stamp"].read_bytes() if f["stamp"].exists() else None)
    return out


def where_is(fleet: DemoFleet, name: str, before: tuple[str | None, bytes | None],
             secrets: bytes) -> str:  # fmt: skip
    """'old' or 'new': the moved box is wholly on one path (asserts so)."""
    old, new = files(fleet, name, OLD), files(fleet, name, NEW)
    loaded = fleet.box(name).agent.loaded_sha
    assert fleet.box(name).agent.crashed is None, f"{name} crashed"
    assert not old["lease"].exists() and not new["lease"].exists(), "a lease left"
    config_sha = before[0]
    assert config_sha is not None
    if new["stamp"].exists():
        stamp = parse_stamp(new["stamp"].read_bytes())
        assert stamp.agent == name and stamp.outcome == "applied", stamp
        assert sha(new["config"]) == stamp.config_sha256 == loaded == config_sha
        assert new["secrets"].read_bytes() == secrets
        assert (new["history"] / config_sha).exists(), "the config is lost from history"
        left = [k for k in ("config", "secrets", "stamp", "history") if old[k].exists()]
        assert not left, f"old path files left after the move: {left}"
        return "new"
    left = [k for k in ("config", "secrets", "history") if new[k].exists()]
    assert not left, f"the new path keeps files of a move given up: {left}"
    assert old["stamp"].exists(), "neither path is stamped"
    stamp = parse_stamp(old["stamp"].read_bytes())
    assert stamp.agent == name and sha(old["config"]) == stamp.config_sha256 == loaded
    assert sha(old["config"]) == config_sha
    assert old["secrets"].read_bytes() == secrets
    assert (old["history"] / config_sha).exists(), "the config is lost from history"
    return "old"


# (kill point, what resume must end with: with the journal, without it)
POINTS = {
    "apply.write": ("old", "old"),  # the new path holds a lease, no file yet
    "apply.activate": ("old", "old"),  # config and secrets at the new path, no stamp
    "apply.stamp": ("old", "old"),  # verified, not stamped: the move is given up
    "apply.release": ("old", "new"),  # stamped: settle rolls back the cut-short wave;
    # without the journal a box consistent on the target, stamped by it, is kept
    "rollout.finish": ("new", "new"),  # every wave done: kept, the old path cleared
    "move.clear": ("new", "new"),  # the journal says done; the old path half-cleared
}


@pytest.mark.parametrize("journal", ["kept", "lost"])
@pytest.mark.parametrize("kind", sorted(POINTS))
async def test_a_move_killed_mid_rollout_is_settled_on_one_path(
    fleet: DemoFleet, tmp_path: Path, kind: str, journal: str
) -> None:
    name = move_one(fleet)
    before = snapshot(fleet)
    secrets = files(fleet, name, OLD)["secrets"].read_bytes()
    state = tmp_path / "state"
    code, _, err = await cli(*apply_args(fleet, state), crash_at=kind)
    assert code == -9, f"never reached {kind}: exit {code}\n{err}"
    if journal == "lost":
        (state / JOURNAL_FILE).unlink()
    code, out, err = await cli("resume", "--repo", str(fleet.repo), "--state-dir", str(state))
    assert code in (0, 3), f"resume exit {code}\n{out}\n{err}"
    assert "Traceback" not in err
    want = POINTS[kind][0 if journal == "kept" else 1]
    assert where_is(fleet, name, before[name], secrets) == want, err
    for other in fleet.names:
        if other != name:
            assert snapshot(fleet)[other] == before[other], f"{other} changed"
            assert not files(fleet, other, OLD)["lease"].exists()
    code, _, err = await cli("resume", "--repo", str(fleet.repo), "--state-dir", str(state))
    assert code == 0 and "nothing to resume" in err, err
    assert where_is(fleet, name, before[name], secrets) == want
