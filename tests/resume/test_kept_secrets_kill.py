"""Kill `reconcile apply` right after a box's secrets file was rewritten; `reconcile resume`
(a new process, holding only the fleet key) finds the kept previous secrets by their keyed
HMAC name and puts them back, then removes the copy."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.demo.fleet import DemoFleet

from .conftest import assert_converged, cli, head_shas, old_shas
from .test_crash import apply_args

KEPT = re.compile(r"^\.(?P<name>.+)\.before-(?P<tag>.+)$")


def kept_copies(fleet: DemoFleet) -> dict[str, list[str]]:
    """Every box's kept secrets copies (file names beside its secrets file)."""
    out = {}
    for name, box in fleet.boxes.items():
        where = box.path(box.paths.secrets).parent
        out[name] = sorted(
            p.name for p in where.iterdir() if (m := KEPT.match(p.name)) and
            m["name"] == box.paths.secrets.name
        )  # fmt: skip
    return out


async def test_resume_after_a_kill_puts_the_kept_secrets_back(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    secrets_before = {n: b.path(b.paths.secrets).read_bytes() for n, b in fleet.boxes.items()}
    fleet.dir.write_secret("kb_token", "kb-demo-a-new-value-for-the-kill-test")
    old, new = old_shas(fleet), head_shas(fleet)
    code, _, err = await cli(*apply_args(fleet, tmp_path), crash_at="apply.activate:1")
    assert code == -9, err
    changed = [n for n, b in fleet.boxes.items()
               if b.path(b.paths.secrets).read_bytes() != secrets_before[n]]  # fmt: skip
    assert len(changed) == 1, changed
    (first,) = changed
    kept = kept_copies(fleet)[first]
    assert len(kept) == 1, kept
    tag = KEPT.match(kept[0])["tag"]  # type: ignore[index]
    assert re.fullmatch(r"[0-9a-f]{32}", tag), f"{kept[0]}: not a keyed HMAC name"

    code, _, err = await cli("resume", "--repo", str(fleet.repo), "--state-dir", str(tmp_path),
                             "--policy", "rollback")  # fmt: skip
    assert code in (0, 3), err
    box = fleet.box(first)
    assert box.path(box.paths.secrets).read_bytes() == secrets_before[first], "not put back"
    assert box.path(box.paths.secrets).stat().st_mode & 0o777 == 0o600
    assert set(assert_converged(fleet, old, new).values()) == {"old"}
    assert not any(kept_copies(fleet).values()), kept_copies(fleet)
