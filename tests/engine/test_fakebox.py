"""The FakeBox itself: a BoxTransport whose files, commands, faults and counts behave as
the driver's tests rely on."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath as P

import pytest

from reconciler.model.box import parse_health
from reconciler.transport.base import BoxTransport, RemoteError, TransportError
from reconciler.transport.fake import FakeBox, chain, fail_nth, fail_on, hang_on


def test_a_fakebox_is_a_box_transport() -> None:
    """It has every member of the Protocol (mypy --strict checks the signatures in fake.py)."""
    assert isinstance(FakeBox("b"), BoxTransport)


async def test_files_and_directories_behave_like_the_ssh_transport() -> None:
    """write_atomic and mkdir make parents; link needs the target's directory; rmdir of a
    non-empty directory fails; stat tells files from directories; rmtree takes all."""
    box = FakeBox("b")
    await box.write_atomic(P("/a/b/f"), b"x", mode=0o600)
    assert box.read("/a/b/f") == b"x"
    st = await box.stat(P("/a/b/f"))
    assert st is not None and (st.size, st.mode & 0o777) == (1, 0o600)
    assert await box.mkdir(P("/a/b")) is False
    assert await box.mkdir(P("/a/c")) is True
    with pytest.raises(RemoteError):
        await box.link(P("/a/b/f"), P("/nowhere/g"))
    await box.link(P("/a/b/f"), P("/a/c/g"))
    assert await box.listdir(P("/a")) == ["b", "c"]
    with pytest.raises(RemoteError):
        await box.rmdir(P("/a/c"))
    await box.rename(P("/a/c/g"), P("/a/h"))
    assert (box.read("/a/c/g"), box.read("/a/h")) == (None, b"x")
    await box.rmtree(P("/a"))
    assert await box.read_file(P("/a/b/f")) is None
    assert box.counts["write_atomic"] == 1
    assert box.round_trips == 11  # failed ones count too


async def test_the_default_commands_load_the_config_and_answer_health() -> None:
    """reload loads the config file's sha; health prints the health JSON; others exit 127."""
    box = FakeBox("b", config_path="/c.json", files={"/c.json": b"{}"})
    first = box.loaded_sha
    await box.write_atomic(P("/c.json"), b'{"v": 2}')
    assert box.loaded_sha == first
    assert (await box.run(["agentctl", "reload"], timeout=1)).ok
    assert box.loaded_sha != first
    out = await box.run(["agentctl", "health"], timeout=1, read_only=True)
    assert parse_health(out.stdout.encode()).loaded_sha256 == box.loaded_sha
    assert (await box.run(["rm", "-rf", "/"], timeout=1)).exit_status == 127
    assert box.counts["run"] == 3


async def test_faults_fail_the_nth_operation_and_hang_until_cancelled() -> None:
    """fail_nth fails only the 2nd write (still a counted round trip); fail_on fails every
    matching op; hang_on hangs until cancelled and records the cancel."""
    box = FakeBox("b", fault=chain(fail_nth("write_atomic", 2), fail_on("run")))
    await box.write_atomic(P("/f"), b"1")
    with pytest.raises(RemoteError):
        await box.write_atomic(P("/f"), b"2")
    await box.write_atomic(P("/f"), b"3")
    assert box.read("/f") == b"3"
    assert box.counts["write_atomic"] == 3
    with pytest.raises(TransportError):
        await box.run(["x"], timeout=1)

    box.fault = hang_on("read_file", path="/f", times=1)
    task = asyncio.ensure_future(box.read_file(P("/f")))
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert box.cancelled == [("read_file", P("/f"))]
    assert await box.read_file(P("/f")) == b"3"  # times=1: the next one runs
