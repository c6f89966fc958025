"""`reconcile diff` live mode as a process against an in-process demo fleet."""

from __future__ import annotations

import json
import re

import asyncssh

from reconciler.demo.fleet import DemoFleet
from reconciler.demo.fleetrepo import FIRST_FAST_MODEL, HEAD_FAST_MODEL
from reconciler.model.box import parse_stamp

from .conftest import cli, commit_all, line_of, remove_agent, replace_in, run_head

FAST_TIMEOUTS = ("connect_timeout_s: 10", "connect_timeout_s: 0.5")


def _groups(text: str) -> dict[str, str]:
    """agent -> status of its group in a --format json diff."""
    doc = json.loads(text)
    return {a: g["status"] for g in doc["groups"] for a in g["agents"]}


def _short_timeouts(fleet: DemoFleet) -> None:
    """Commit small connect/command timeouts and no connect retries into fleet.yaml."""
    path = fleet.repo / "fleet.yaml"
    replace_in(path, "connect_timeout_s: 10", "connect_timeout_s: 0.5")
    replace_in(path, "command_timeout_s: 30", "command_timeout_s: 1\n  connect_retries: 0")
    commit_all(fleet.repo, "short timeouts for the test")


async def test_head_change_grouped_with_provenance_and_gone_once_boxes_run_head(
    fleet: DemoFleet,
) -> None:
    """The head's model upgrade shows once for tier fast, with file:line; exit 2, then 0."""
    repo = str(fleet.repo)
    run = await cli("diff", "--repo", repo)
    assert run.code == 0, run.err
    fast = [b.name for b in fleet.tier("fast")]
    (smart,) = [n for n in fleet.names if n not in fast]
    line = line_of(fleet.repo / "agents" / "tier-fast.yaml", "model:")
    assert "3 agents in tier fast" in run.out
    assert f"model {FIRST_FAST_MODEL} → {HEAD_FAST_MODEL}" in run.out
    assert f"agents/tier-fast.yaml:{line}" in run.out
    assert all(n in run.out for n in fast)
    assert smart not in run.out  # no false drift: the smart box runs what the repo says
    assert "drift" not in run.out and "Not compared" not in run.out
    assert (await cli("diff", "--repo", repo, "--exit-code")).code == 2

    for name in fast:
        run_head(fleet, name)
    run = await cli("diff", "--repo", repo, "--exit-code")
    assert run.code == 0, run.both
    assert "No changes (4 agents unchanged)" in run.out


async def test_hand_edit_on_a_box_is_drift_though_the_repo_did_not_change(
    fleet: DemoFleet,
) -> None:
    """A config file edited on one box is reported drifted for that agent alone."""
    (smart,) = [n for n in fleet.names if fleet.box(n) not in fleet.tier("fast")]
    box = fleet.box(smart)
    config = box.path(box.paths.config)
    config.write_bytes(config.read_bytes().replace(b"max_tokens: ", b"max_tokens: 9"))
    run = await cli("diff", "--repo", str(fleet.repo), "--format", "json")
    assert run.code == 0, run.err
    statuses = _groups(run.out)
    assert statuses[smart] == "drifted"
    assert {s for n, s in statuses.items() if n != smart} == {"changed"}
    text = await cli("diff", "--repo", str(fleet.repo))
    assert f"{smart} [drifted]" in text.out
    assert "edited by hand" in text.out


async def test_changed_host_key_refused_with_nothing_read_or_written(fleet: DemoFleet) -> None:
    """A box presenting another host key: refused, named with both fingerprints, untouched."""
    name = fleet.names[0]
    box = fleet.box(name)
    expected = asyncssh.read_private_key(fleet.dir.host_key(name)).get_fingerprint("sha256")
    box.fault("host-key-changed")
    run = await cli("diff", "--repo", str(fleet.repo))
    assert run.code == 1
    assert f"[127.0.0.1]:{box.ssh_port}" in run.err
    assert "CHANGED" in run.err
    presented = re.search(r"presented ssh-ed25519 (SHA256:\S+?),", run.err)
    assert presented is not None and presented.group(1) != expected
    assert expected in run.err
    assert box.counters.sftp_sessions == 0
    assert box.counters.writes == 0 and box.counters.commands == 0
    assert box.counters.ssh_connections >= 1  # it was tried, and refused at the handshake


async def test_ssh_hang_is_bounded_and_unknown_failing_unless_allowed(fleet: DemoFleet) -> None:
    """A hanging box is UNKNOWN after the timeout: exit 1, or listed with --allow-unreachable."""
    _short_timeouts(fleet)
    name = fleet.names[0]
    fleet.box(name).fault("ssh-hang")
    run = await cli("diff", "--repo", str(fleet.repo))
    assert run.code == 1
    assert f"unreachable: {name}" in run.err
    assert "no SSH answer" in run.err and "--allow-unreachable" in run.err
    allowed = await cli(
        "diff", "--repo", str(fleet.repo), "--allow-unreachable", "--exit-code", "--format", "json"
    )
    assert allowed.code == 2, allowed.err
    assert _groups(allowed.out)[name] == "unknown"
    assert json.loads(allowed.out)["summary"]["unknown"] == 1


async def test_refused_box_is_reported_unknown(fleet: DemoFleet) -> None:
    """A box whose SSH port refuses connections is unknown, with the reason, never skipped."""
    _short_timeouts(fleet)
    name = fleet.names[1]
    fleet.box(name).fault("ssh-refused")
    run = await cli("diff", "--repo", str(fleet.repo), "--allow-unreachable")
    assert run.code == 0, run.err
    assert "Not compared:" in run.out
    assert re.search(
        rf"{name}: connect: cannot reach 127\.0\.0\.1:{fleet.box(name).ssh_port}", run.out
    )


async def test_unmanaged_foreign_and_orphan_boxes_are_listed(fleet: DemoFleet) -> None:
    """No stamp: added (adopted); another fleet's stamp: foreign; removed agent's box: orphan."""
    fast = [b.name for b in fleet.tier("fast")]
    (smart,) = [n for n in fleet.names if n not in fast]
    unmanaged, foreign = fast[0], fast[1]
    box = fleet.box(unmanaged)
    box.path(box.paths.stamp).unlink()
    box = fleet.box(foreign)
    stamp = parse_stamp(box.path(box.paths.stamp).read_bytes())
    other = stamp.model_copy(update={"fleet_id": "someone-else"})
    box.path(box.paths.stamp).write_bytes(other.to_bytes())
    shard = smart.split("-smart-")[0]
    remove_agent(fleet.repo, shard, smart)
    commit_all(fleet.repo, f"remove {smart}")

    run = await cli("diff", "--repo", str(fleet.repo), "--format", "json")
    assert run.code == 0, run.err
    statuses = _groups(run.out)
    assert statuses[unmanaged] == "added"
    assert statuses[foreign] == "foreign"
    assert statuses[smart] == "removed"
    assert statuses[fast[2]] == "changed"
    text = await cli("diff", "--repo", str(fleet.repo))
    assert "the first apply adopts it" in text.out
    assert "'someone-else'" in text.out
    assert "orphan" in text.out
    assert box.counters.writes == 0  # a foreign box is read, never written


async def test_secret_change_shows_only_a_fingerprint(fleet: DemoFleet) -> None:
    """A changed secret value: 'secrets file changed' by HMAC; no value in any format."""
    old = fleet.dir.read_secret("kb_token")
    new = "kb-test-rotated-value-0123456789"
    fleet.dir.write_secret("kb_token", new)
    box = fleet.box(fleet.names[0])
    assert old.encode() in box.path(box.paths.secrets).read_bytes()  # the box holds the old one
    runs = {}
    for fmt in ("text", "markdown", "json"):
        runs[fmt] = await cli("diff", "--repo", str(fleet.repo), "--format", fmt)
        assert runs[fmt].code == 0, runs[fmt].err
    assert "secrets file changed (hmac:" in runs["text"].out
    assert "secrets" in runs["markdown"].out
    assert json.loads(runs["json"].out)["summary"]["secrets_changed"] == len(fleet.names)
    for run in runs.values():
        assert old not in run.both and new not in run.both
