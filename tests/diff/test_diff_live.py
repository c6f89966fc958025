"""Live mode: the repo against what each box really runs (LiveBox states), purely."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.config.repo import Repo, load_repo
from reconciler.diff import AgentStatus, diff_live
from reconciler.model.live import BoxState, LiveBox
from reconciler.render import render_payload, sha256_hex
from reconciler.render.stamp import make_stamp

from .conftest import tiny_files

NOW = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)


def _repo(**kw: Any) -> Repo:
    return load_repo(tiny_files(**kw))


def _box(repo: Repo, name: str, payload: dict[str, Any] | None = None, **kw: Any) -> LiveBox:
    """A managed box running `payload` (default: the repo's), stamped with what it runs."""
    data = render_payload(payload if payload is not None else repo.agents[name].agent.config)
    stamp = make_stamp(
        fleet_id="lab",
        agent=name,
        revision="a" * 40,
        config_sha256=sha256_hex(data),
        rollout_id="r1",
        outcome="applied",
        now=NOW,
    )
    fields: dict[str, Any] = {
        "agent": name,
        "state": BoxState.MANAGED,
        "stamp": stamp,
        "config_bytes": data,
        "config_sha256": sha256_hex(data),
    }
    fields.update(kw)
    return LiveBox(**fields)


def test_boxes_in_sync_show_no_change() -> None:
    """Boxes that run exactly the repo's payload do not differ."""
    repo = _repo()
    d = diff_live(repo, [_box(repo, n) for n in repo.agents])
    assert d.agents == ()
    assert d.unchanged == 4
    assert not d.has_changes


def test_boxes_on_the_old_config_change() -> None:
    """Boxes still running an older model show the model change, from the layer that set it."""
    old, new = _repo(), _repo(model="claude-sonnet-4-5")
    d = diff_live(new, [_box(new, n, old.agents[n].agent.config) for n in new.agents])
    assert {a.status for a in d.agents} == {AgentStatus.CHANGED}
    change = d.agents[0].changes[0]
    assert (change.dotted, change.old, change.new) == (
        "model",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    )
    assert change.source == "agents/_base.yaml:3"
    assert change.old_source is None


def test_hand_edit_is_drift_even_when_the_repo_did_not_change() -> None:
    """A file that differs from its stamp is drift, and the diff shows undoing the edit."""
    repo = _repo()
    name = "lab-fast-001"
    good = _box(repo, name)
    edited = {**repo.agents[name].agent.config, "max_tokens": 9999}
    data = render_payload(edited)
    box = LiveBox(
        agent=name,
        state=BoxState.MANAGED,
        stamp=good.stamp,
        config_bytes=data,
        config_sha256=sha256_hex(data),
    )
    others = [_box(repo, n) for n in repo.agents if n != name]
    d = diff_live(repo, [box, *others])
    (agent,) = d.agents
    assert agent.status is AgentStatus.DRIFTED
    assert agent.reason is not None and "edited by hand" in agent.reason
    assert [(c.dotted, c.old, c.new) for c in agent.changes] == [("max_tokens", 9999, 512)]
    assert agent.rollout


def test_unmanaged_box_is_added_for_adoption() -> None:
    """A box without a stamp is added: the first apply adopts it."""
    repo = _repo()
    name = "lab-fast-002"
    box = LiveBox(agent=name, state=BoxState.UNMANAGED, config_bytes=None)
    d = diff_live(repo, [box, *(_box(repo, n) for n in repo.agents if n != name)])
    (agent,) = d.agents
    assert agent.status is AgentStatus.ADDED
    assert agent.reason == "no config file on the box"
    assert {c.dotted for c in agent.changes} == {
        "model",
        "prompt",
        "max_tokens",
        "api_key",
        "concurrency",
    }


def test_unreachable_foreign_and_unread_boxes_are_listed_with_reasons() -> None:
    """Unknown and foreign boxes are never skipped; an agent with no box read is unknown."""
    repo = _repo()
    boxes = [
        LiveBox(
            agent="lab-fast-001", state=BoxState.UNKNOWN, reason="127.0.0.1:2201: connect: refused"
        ),
        LiveBox(agent="lab-fast-002", state=BoxState.FOREIGN, reason="stamp names fleet 'other'"),
        _box(repo, "lab-fast-003"),
    ]
    d = diff_live(repo, boxes)
    got = {a.agent: (a.status, a.reason) for a in d.agents}
    assert got == {
        "lab-fast-001": (AgentStatus.UNKNOWN, "127.0.0.1:2201: connect: refused"),
        "lab-fast-002": (AgentStatus.FOREIGN, "stamp names fleet 'other'"),
        "lab-fast-004": (AgentStatus.UNKNOWN, "the box was not read"),
    }
    assert len(d.problems) == 3
    assert not d.has_changes


def test_orphan_box_of_this_fleet_is_removed() -> None:
    """A box stamped for this fleet whose agent left the repo is removed (an orphan)."""
    big, small = _repo(agents=5), _repo(agents=4)
    boxes = [_box(big, n) for n in big.agents]
    d = diff_live(small, boxes)
    (agent,) = d.agents
    assert (agent.agent, agent.status) == ("lab-fast-005", AgentStatus.REMOVED)
    assert agent.reason is not None and "orphan" in agent.reason
    assert all(str(c.kind) == "removed" for c in agent.changes)


def test_reformatted_file_is_format_only() -> None:
    """Same fields in another key order: no field change, but the bytes are rewritten."""
    repo = _repo(agents=1)
    name = "lab-fast-001"
    payload = dict(reversed(list(repo.agents[name].agent.config.items())))
    d = diff_live(repo, [_box(repo, name, payload)])
    (agent,) = d.agents
    assert agent.changes == ()
    assert agent.format_only
    assert agent.rollout


def test_unparseable_file_says_why() -> None:
    """A box file that is not YAML is compared as empty, and the reason says so."""
    repo = _repo(agents=1)
    name = "lab-fast-001"
    box = _box(repo, name, config_bytes=b"model: [unclosed\n", config_sha256="0" * 64)
    (agent,) = diff_live(repo, [box]).agents
    assert agent.reason is not None and "not valid YAML" in agent.reason
    assert agent.status is AgentStatus.DRIFTED


def test_secrets_fingerprint_mismatch_is_a_change() -> None:
    """A box whose secrets file's fingerprint differs from the wanted one needs a rollout."""
    repo = _repo(agents=2)
    boxes = [_box(repo, n, secrets_fingerprint="hmac:aaaaaaaaaaaaaaaa") for n in repo.agents]
    wanted = {"lab-fast-001": "hmac:bbbbbbbbbbbbbbbb", "lab-fast-002": "hmac:aaaaaaaaaaaaaaaa"}
    d = diff_live(repo, boxes, desired_secrets=wanted)
    (agent,) = d.agents
    assert agent.agent == "lab-fast-001"
    assert agent.secrets is not None
    assert (agent.secrets.old, agent.secrets.new) == (
        "hmac:aaaaaaaaaaaaaaaa",
        "hmac:bbbbbbbbbbbbbbbb",
    )
    # Without wanted fingerprints (no fleet key here) secrets are simply not compared.
    assert diff_live(repo, boxes).agents == ()
