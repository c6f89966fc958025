"""How `read_box` names a box by its stamp file, and how status judges it (no fleet needed).

No stamp: unmanaged. A valid stamp of this fleet and agent: managed; of another fleet or
agent: foreign. A stamp file that is not JSON, or JSON that is not a stamp: unknown, with
a reason naming the box and the stamp path, and never the file's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath

import pytest

from reconciler.model.agent import Agent
from reconciler.model.box import Health
from reconciler.model.live import BoxState, LiveBox
from reconciler.render.stamp import make_stamp
from reconciler.status import Color, Signals, assess
from reconciler.transport.base import CommandResult
from reconciler.transport.live import Box, read_box

AGENT = Agent(
    name="lab-fast-001",
    tier="fast",
    shard="lab",
    host="127.0.0.9",
    port=2222,
    user="agent",
    config_path="/etc/agent/config.yaml",
    health_url="http://{host}:9464/healthz",
)
STAMP_PATH = "/etc/agent/config.yaml.stamp.json"
HEALTH = Health(
    alive=True,
    heartbeat_age_s=1.0,
    agent_version="demo/1",
    tasks_processed=10,
    queue_depth=0,
    uptime_s=100.0,
)


def _stamp(fleet_id: str = "lab", agent: str = AGENT.name) -> bytes:
    return make_stamp(
        fleet_id=fleet_id,
        agent=agent,
        revision="a" * 40,
        config_sha256="b" * 64,
        rollout_id="r1",
        outcome="applied",
        now=datetime(2026, 11, 23, tzinfo=UTC),
    ).to_bytes()


class _Box:
    """A box whose files are a dict; nothing else is asked of it here."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def read_file(self, path: PurePosixPath | str) -> bytes | None:
        return self.files.get(str(path))

    async def listdir(self, path: PurePosixPath | str) -> list[str]:
        return []

    async def run(
        self, argv: Sequence[str], *, timeout: float, read_only: bool = False
    ) -> CommandResult:
        raise AssertionError("no command is run to read a box")


async def _read(stamp: bytes | None) -> LiveBox:
    files = {"/etc/agent/config.yaml": b"model: small\n"}
    if stamp is not None:
        files[STAMP_PATH] = stamp

    async def connect(agent: Agent) -> Box:
        return _Box(files)

    async def fetch(url: str) -> Health:
        return HEALTH

    return await read_box(AGENT, connect, fetch, fleet_id="lab", fleet_key=None, timeout=5)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"\x00\xff garbage token=sk-do-not-print-me", "Invalid JSON"),
        (b"", "Invalid JSON"),
        (b'["sk-do-not-print-me"]', "not a valid stamp"),
        (b'{"fleet_id": "lab", "agent": "lab-fast-001"}', "not a valid stamp: Field required"),
        (_stamp().replace(b'"applied"', b'"sk-do-not-print-me"'), "not a valid stamp"),
    ],
    ids=["binary", "empty", "json-list", "missing-fields", "bad-outcome"],
)
async def test_an_unreadable_stamp_is_unknown_not_foreign(data: bytes, detail: str) -> None:
    """Unknown, naming the box, host and stamp path and what is wrong; the content never."""
    live = await _read(data)
    assert live.state is BoxState.UNKNOWN
    assert live.stamp is None
    assert live.stamp_error is not None and detail in live.stamp_error
    assert live.reason is not None
    assert live.reason.startswith(
        f"lab-fast-001: stamp unreadable: {STAMP_PATH} on 127.0.0.9:2222: {live.stamp_error}"
    )
    assert "sk-do-not-print-me" not in live.reason
    assert live.health == HEALTH  # the box answered: what it says is still read


@pytest.mark.parametrize(
    ("stamp", "state"),
    [
        (None, BoxState.UNMANAGED),
        (_stamp(), BoxState.MANAGED),
        (_stamp(fleet_id="someone-else"), BoxState.FOREIGN),
        (_stamp(agent="lab-fast-002"), BoxState.FOREIGN),
    ],
    ids=["no-stamp", "ours", "other-fleet", "other-agent"],
)
async def test_a_valid_stamp_or_none_keeps_its_state(stamp: bytes | None, state: BoxState) -> None:
    """Foreign stays for a valid stamp naming another fleet or agent."""
    live = await _read(stamp)
    assert live.state is state
    assert live.stamp_error is None


def test_status_calls_an_unreadable_stamp_unknown_and_still_judges_health() -> None:
    """Red 'unknown' (not 'unreachable'), and a dead agent behind it is still reported."""
    dead = HEALTH.model_copy(update={"alive": False})
    live = LiveBox(
        AGENT.name,
        BoxState.UNKNOWN,
        reason=f"{AGENT.name}: stamp unreadable: {STAMP_PATH} on 127.0.0.9:2222: Invalid JSON",
        stamp_error="Invalid JSON",
        health=dead,
    )
    row = assess(AGENT.name, "fast", "lab", live, Signals(problem="no metrics_url configured"))
    assert row.color is Color.RED
    assert row.state is BoxState.UNKNOWN
    assert (
        row.reasons[0] == f"unknown: stamp unreadable: {STAMP_PATH} on 127.0.0.9:2222: Invalid JSON"
    )
    assert "dead: the agent reports alive=false" in row.reasons
    assert "metrics: no metrics_url configured" in row.reasons

    gone = LiveBox(AGENT.name, BoxState.UNKNOWN, reason=f"{AGENT.name}: connect: refused")
    row = assess(AGENT.name, "fast", "lab", gone, Signals(problem="not scraped"))
    assert row.reasons == ("unreachable: connect: refused",)
