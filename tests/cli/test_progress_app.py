"""The piped line budget through the app layer: `reconciler.app.apply.apply()` in process,
its progress through the CLI's own `ApplyScreen` (no terminal: the `LineReporter`) into
captured stderr.

The repo is the demo's (fleet-config-example pointed at 90 agents, its head the tier-fast
model upgrade: 30 boxes in the example's 4 waves `[1, 5, 25%, 100%]`, its four metric
gates on), with `metrics.inconclusive_wait_s` raised to 15 minutes. The boxes are
FakeBoxes seeded exactly as `demo up` seeds its boxes (demo/seed.py), behind a Link, and
time is a FakeClock: the app layer's test seam (`ApplyRequest.clock`, `link_factory`,
`metric_source`), no environment hook. The samples follow the fake clock: the window the
second wave opens stays short of samples for 10 minutes, so its gates wait, inconclusive,
polling every few (fake) seconds. Gates, watchdog, leases and the fleet lock stay on.

The whole rollout prints under 100 lines on stderr, none longer than 160 characters,
none twice, no Python repr; a failed box and each restored box get exactly one line.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from reconciler.app.apply import ApplyRequest, ApplyResult, apply
from reconciler.cli.common import Format
from reconciler.cli.progress import ApplyScreen, summary
from reconciler.demo.fleetrepo import DemoAgent, agent_names, git, write_repo
from reconciler.demo.layout import DemoDir, write_secrets
from reconciler.demo.seed import seed_boxes
from reconciler.engine.session import Link, Prepared, Source
from reconciler.gates import AgentWindow
from reconciler.metrics.source import Measurement
from reconciler.model.box import Health
from reconciler.plan import Plan
from reconciler.testing.clock import FakeClock
from reconciler.transport.base import CommandResult
from reconciler.transport.fake import FakeBox, agent_commands

AGENTS = 90  # 30 of them tier fast: the example's waves make 4 of them
WAIT_S = 600.0  # the second wave's window gets its samples after 10 minutes (fake time)
INCONCLUSIVE_WAIT_S = 900


class Samples:
    """A MetricSource on the fake clock: 1000 tasks a window, 1% errors, fast answers; but
    the window opened by the second wave has 5 tasks until WAIT_S after it opened."""

    name = "fake-metrics"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.opened = 0

    async def open(self, agents: Sequence[str]) -> object:
        self.opened += 1
        return (self.opened, self.clock.now().timestamp())

    async def measure(self, mark: object, agents: Sequence[str]) -> Measurement:
        assert isinstance(mark, tuple)
        n, start = mark
        now = self.clock.now().timestamp()
        tasks = 5.0 if n == 2 and now - start < WAIT_S else 1000.0
        buckets = ((0.5, tasks * 0.9), (1.0, tasks), (math.inf, tasks))
        windows: dict[str, AgentWindow | str] = {}
        for a in agents:
            windows[a] = AgentWindow(
                agent=a, start=start, end=now, tasks=tasks, errors=tasks / 100,
                tokens_in=tasks * 800, tokens_out=tasks * 200, cost=tasks * 0.002,
                buckets=buckets,
            )  # fmt: skip
        return Measurement(now, windows)

    async def close(self) -> None:
        return None


class FakeProbe:
    """The HTTP side of the Link: each health URL answered by its FakeBox."""

    def __init__(self, by_url: Mapping[str, FakeBox]) -> None:
        self.by_url = by_url

    async def fetch_health(self, url: str, **_: Any) -> Health:
        return await self.by_url[url].fetch_health(url)

    async def close(self) -> None:
        return None


class FakeLink(Link):
    """The command's connections, to FakeBoxes: no SSH pool, no HTTP client."""

    def __init__(self, source: Source, root: Path, boxes: Mapping[str, FakeBox],
                 by_url: Mapping[str, FakeBox]) -> None:  # fmt: skip
        conn = source.repo.fleet.connection
        self.timeout, self.root, self.concurrency = conn.command_timeout_s, root, 64
        self.probe = FakeProbe(by_url)  # type: ignore[assignment]
        self.head_revision = source.revision
        self.boxes = boxes

    def ssh(self, agent: Any) -> Any:
        return self.boxes[agent.name]

    async def close(self) -> None:
        return None


class Fleet:
    """The demo repo on disk, its boxes seeded (files), and fresh FakeBoxes of them per test."""

    def __init__(self, root: Path) -> None:
        self.dir = DemoDir(root)
        secrets = write_secrets(self.dir)
        self.agents = [
            DemoAgent(name, shard, tier, ssh_port=20000 + i, http_port=30000 + i)
            for i, (name, shard, tier) in enumerate(agent_names(AGENTS))
        ]
        first, _ = write_repo(self.dir, self.agents, secrets, user="agent")
        self.seeded = seed_boxes(self.dir, first)
        fleet_yaml = self.dir.repo / "fleet.yaml"
        text = fleet_yaml.read_text(encoding="utf-8")
        text, n = re.subn(r"inconclusive_wait_s: \d+", f"inconclusive_wait_s: "
                          f"{INCONCLUSIVE_WAIT_S}", text)  # fmt: skip
        assert n == 1
        fleet_yaml.write_text(text, encoding="utf-8")
        git(self.dir.repo, "commit", "-q", "-am", "metrics: a longer inconclusive wait")

    def boxes(self, clock: FakeClock) -> dict[str, FakeBox]:
        out = {}
        for name, agent in self.seeded.items():
            root = self.dir.box_root(name)
            box = FakeBox(name, config_path=agent.config_path,
                          now=lambda: clock.now().timestamp())  # fmt: skip
            for path in root.rglob("*"):
                if path.is_file():
                    where = PurePosixPath("/") / path.relative_to(root).as_posix()
                    box.put(where, path.read_bytes(), path.stat().st_mode & 0o777)
            config = box.read(box.config_path)
            assert config is not None
            box.loaded_sha = hashlib.sha256(config).hexdigest()
            out[name] = box
        return out

    def request(self, state: Path, clock: FakeClock, boxes: Mapping[str, FakeBox],
                **kw: Any) -> ApplyRequest:  # fmt: skip
        by_url = {a.health_url: boxes[a.name] for a in self.agents}
        return ApplyRequest(
            repo=self.dir.repo, state_dir=state, clock=clock,
            link_factory=lambda s: FakeLink(s, self.dir.repo, boxes, by_url),
            metric_source=Samples(clock), **kw,
        )  # fmt: skip


class Screen(ApplyScreen):
    """The CLI's view, piped; keeps the plan it showed."""

    plan: Plan | None = None

    def show(self, p: Prepared, preview: list[str], state_dir: Path) -> None:
        self.plan = p.plan
        super().show(p, preview, state_dir)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return Fleet(tmp_path_factory.mktemp("progress-app"))


async def run_apply(fleet: Fleet, state: Path, clock: FakeClock,
                    boxes: Mapping[str, FakeBox], *, dry_run: bool = False,
                    ) -> tuple[ApplyResult, Screen]:  # fmt: skip
    screen = Screen(Format.text, dry_run=dry_run, yes=True)
    try:
        result = await apply(fleet.request(state, clock, boxes, dry_run=dry_run), screen)
    finally:
        screen.close()
    if result.run is not None:
        summary(result.run)  # as the CLI does after apply
    return result, screen


def assert_compact(lines: list[str], state: Path) -> None:
    """Short, once each, no repr; a line naming a file of the state dir may be longer (paths
    print whole, and a CI tmp dir can be deep)."""
    long = [line for line in lines if len(line) > 160 and str(state) not in line]
    assert not long, long
    twice = sorted({line for line in lines if lines.count(line) > 1})
    assert not twice, twice
    reprs = [line for line in lines if re.search(r"\[\[|\['|\{'|': |None\b", line)]
    assert not reprs, reprs


async def test_a_4_wave_apply_with_a_10_minute_gate_wait_prints_under_100_lines(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    boxes = fleet.boxes(clock)
    result, screen = await run_apply(fleet, tmp_path / "state", clock, boxes)
    out = capsys.readouterr()
    lines = out.err.splitlines()
    text = out.err

    assert result.exit_code == 0, text
    assert screen.plan is not None and len(screen.plan.waves) == 4, out.out
    changed = {a for w in screen.plan.waves for a in w.agents}
    new = {name: box.loaded_sha for name, box in boxes.items() if name in changed}
    assert len(changed) == 30 and all(sha != fleet_sha(fleet, n) for n, sha in new.items())
    assert clock.elapsed > WAIT_S  # the wait did happen, in fake time
    assert len(lines) < 100, text
    assert_compact(lines, tmp_path)
    for n in range(1, 5):
        assert f"wave {n}/4: applying" in text, text
        assert re.search(rf"gates\.passed +wave {n}/4: ", text), text
    told = [line for line in lines if line.startswith("gates.waiting")]
    assert 5 <= len(told) <= 12, told  # about once a minute of the wait, not every poll
    assert re.search(r"after 0s of 900s: task-errors, .* waiting: \d+ of 30 samples", told[0])
    assert re.search(r"after 540s of 900s", told[-1]), told
    assert not [line for line in lines if line.startswith(("box.failed", "box.restored"))]
    assert any(line.startswith("rollout.finished   done (exit 0)") for line in lines), text


def fleet_sha(fleet: Fleet, name: str) -> str:
    """The sha of the config the box was seeded with (the first commit's)."""
    root = fleet.dir.box_root(name)
    data = (root / PurePosixPath(fleet.seeded[name].config_path).relative_to("/")).read_bytes()
    return hashlib.sha256(data).hexdigest()


def _reload_fails(reason: str, seeded: bytes) -> Any:
    def handler(box: FakeBox, argv: Sequence[str]) -> CommandResult:
        if argv[-1] == "reload" and box.read(box.config_path) != seeded:
            return CommandResult(1, "", reason)
        return agent_commands(box, argv)

    return handler


async def test_a_failed_box_and_each_restored_box_get_exactly_one_line(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock()
    boxes = fleet.boxes(clock)
    _, dry = await run_apply(fleet, tmp_path / "state", clock, boxes, dry_run=True)
    assert dry.plan is not None and len(dry.plan.waves) == 4
    victim = dry.plan.waves[2].agents[0]
    reason = "config rejected: name must match ^[a-z0-9]{0,62}$ [strict]"
    box = boxes[victim]
    seeded = box.read(box.config_path)
    assert seeded is not None
    box.handler = _reload_fails(reason, seeded)
    capsys.readouterr()

    result, _ = await run_apply(fleet, tmp_path / "state", clock, boxes)
    out = capsys.readouterr()
    lines = out.err.splitlines()
    text = out.err

    assert result.exit_code == 3, text
    assert result.run is not None
    assert_compact(lines, tmp_path)
    (failed,) = [line for line in lines if line.startswith("box.failed")]
    assert victim in failed and "wave 3/4" in failed, failed
    assert "^[a-z0-9]{0,62}$ [strict]" in failed, failed  # verbatim, no markup eaten
    restored = [line for line in lines if line.startswith("box.restored")]
    put_back = {a for w in dry.plan.waves[:3] for a in w.agents}  # the victim's wave too
    assert len(restored) == len(put_back), text
    for agent in put_back:
        assert sum(agent in line for line in restored) == 1, (agent, restored)
        assert boxes[agent].loaded_sha == fleet_sha(fleet, agent)
    assert sum(1 for line in lines if line.startswith("rollback.started")) == 1, text
    assert len(lines) < 100 + len(restored) + 1, text
