"""`reconcile status` and `history` text and exit codes, from reports built in memory (pure).

At 80 columns an agent's name prints whole and its line never wraps (the reasons are cut
with an ellipsis); boxes off the head revision or left behind by a budgeted rollout are
listed and the verdict never says "every agent is green" then; exit 0/1/2; a piped
`--watch` prints one change line per refresh. `history` prints revisions whole.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from reconciler.model.box import Stamp, StampHistoryEntry
from reconciler.report.history import rows_from_stamps, to_text
from reconciler.report.status import (
    AgentStatusOut,
    StatusReport,
    change_line,
    exit_code,
    status_text,
)
from reconciler.status import Color

LONG = "eu-west-fast-batch-canary-0001-with-a-long-name"
WHY = "unreachable: " + "the SSH connection to 127.0.0.1:40123 was refused " * 4


def agent(name: str, color: Color = Color.GREEN, **kw: object) -> AgentStatusOut:
    fields: dict[str, object] = {
        "agent": name, "tier": "fast", "shard": "eu-west", "color": color, "reasons": [],
        "state": "reachable", "agent_version": "demo-agent/1.0.0", "revision": "a" * 40,
        "heartbeat_age_s": 1.0, "error_rate": 0.0, "latency_p95_s": 1.5, "queue_depth": 0,
        "current": True,
    }  # fmt: skip
    fields.update(kw)
    return AgentStatusOut.model_validate(fields)


def report(*agents: AgentStatusOut, left: tuple[str, ...] = ()) -> StatusReport:
    stale = [a.agent for a in agents if a.current is False]
    behind = [a for a in stale if a in left]
    worst = max((a.color for a in agents), key=lambda c: c.rank)
    totals = {c.value: sum(a.color is c for a in agents) for c in Color}
    return StatusReport(
        fleet_id="acme", checked_at="2026-12-01T10:00:00Z", worst=worst, totals=totals,
        groups=[], versions={"demo-agent/1.0.0": len(agents)}, revisions={}, orphans=[],
        agents=[a.model_copy(update={"left_behind": a.agent in behind}) for a in agents],
        head_revision="b" * 40, out_of_date=stale, left_behind=behind,
        left_by="r-1" if behind else None, exit_code=exit_code(worst, stale, behind),
    )  # fmt: skip


def text(r: StatusReport, width: int = 80, **kw: bool) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, soft_wrap=True, color_system=None).print(status_text(r, **kw))
    return buf.getvalue()


def test_80_columns_print_names_whole_and_one_line_per_agent() -> None:
    """A long name whole; a long reason cut with an ellipsis; no line over 80 columns."""
    out = text(report(agent(LONG, Color.RED, reasons=[WHY]), agent("b", Color.YELLOW)))
    lines = out.splitlines()
    mine = [line for line in lines if LONG in line]
    assert len(mine) == 1 and mine[0].rstrip().endswith("…"), out
    assert "unreachable: the SSH" in mine[0]
    assert all(len(line) <= 80 for line in lines), out
    assert "demo-agent/1.0.0" not in "".join(mine)  # version: --wide only


def test_wide_prints_every_column_whole() -> None:
    """--wide: tier, shard, version, the whole revision and the whole reason."""
    out = text(report(agent(LONG, Color.RED, reasons=[WHY])), width=4096, wide=True)
    line = next(x for x in out.splitlines() if LONG in x)
    for cell in ("fast", "eu-west", "demo-agent/1.0.0", "a" * 40, WHY.strip()):
        assert cell in line
    assert "…" not in line


@pytest.mark.parametrize(
    ("agents", "left", "code", "says"),
    [
        ([agent("a"), agent("b")], (), 0, "every agent is green and on the head revision"),
        ([agent("a"), agent("b", current=False)], (), 2, "1 not on the head revision"),
        ([agent("a", current=False)], ("a",), 2, "1 left behind by rollout r-1"),
        ([agent("a", Color.RED), agent("b", current=False)], (), 1, "1 red"),
        ([agent("a", Color.YELLOW)], (), 0, "1 yellow"),
    ],
    ids=["green", "out-of-date", "left-behind", "red", "yellow"],
)
def test_verdict_and_exit_code(
    agents: list[AgentStatusOut], left: tuple[str, ...], code: int, says: str
) -> None:
    """0 all green and current, 1 any red, 2 out of date or left behind; said in words."""
    r = report(*agents, left=left)
    assert r.exit_code == code
    out = text(r)
    assert says in out, out
    if code:
        assert "every agent is green" not in out
    for a in r.agents:
        if a.current is False:  # listed although green
            assert any(line.split()[1:2] == [a.agent] for line in out.splitlines()), out
    if left:
        assert "left behind by the last rollout" in out


def test_piped_watch_prints_one_change_line_per_refresh() -> None:
    """The first refresh: the totals; later ones: which agents changed color, or no change."""
    first = report(agent("a"), agent("b"))
    second = report(agent("a", Color.RED), agent("b"))
    line = change_line(None, first)
    assert "green 2 yellow 0 red 0 out-of-date 0" in line and "\n" not in line
    assert change_line(first, first).endswith("; no change")
    assert change_line(first, second).endswith("; a green->red")


def test_history_prints_revisions_whole_and_dirty_ones_as_dirty() -> None:
    """A `+dirty-<hash>` revision keeps its suffix; rows from stamps claim no rollback time."""
    clean, dirty = "c" * 40, "d" * 40 + "+dirty-0123456789ab"

    def stamp(rid: str, revision: str, outcome: str, at: str) -> Stamp:
        entry = StampHistoryEntry(
            revision=revision, config_sha256="e" * 64, outcome=outcome, applied_at=at,
            rollout_id=rid,
        )  # fmt: skip
        return Stamp.model_construct(history=[entry])

    rows = rows_from_stamps({
        "a": stamp("r-2", dirty, "applied", "2026-12-01T10:00:00Z"),
        "b": stamp("r-1", clean, "rolled-back", "2026-12-01T09:00:09Z"),
    })  # fmt: skip
    assert [r.revision for r in rows] == [dirty, None]
    out = to_text(rows)
    assert dirty in out
    assert all(r.time_to_roll_back_s is None for r in rows)
    assert rows[1].restore_span_s == 0.0
