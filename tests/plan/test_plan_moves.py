"""A config_path change is a rollout to the new path, and the plan says so: old path -> new."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from diff.conftest import tiny_files

from reconciler.cli import progress
from reconciler.cli.common import Format
from reconciler.config.repo import load_repo
from reconciler.model.live import BoxState, LiveBox
from reconciler.plan import Delivery, load_plan, plan_id
from reconciler.rollout.preflight import desired_of, survey

from .builders import change, plan_of

OLD, NEW = "/etc/agent/config.yaml", "/srv/agent/config.yaml"


def test_moved_box_is_written_to_the_new_path() -> None:
    """A moved config is written (never restored from a history beside another path)."""
    moved = change("a1", desired="v1", history=("v1",)).model_copy(
        update={"moved_from": OLD, "config_path": NEW}
    )
    box = plan_of([moved]).box("a1")
    assert box.moved
    assert box.delivery is Delivery.WRITE
    assert box.move_text == f"config path {OLD} → {NEW}"


def test_a_move_is_part_of_the_plan_id() -> None:
    """The same box with and without a move gives two plans."""
    still = change("a1")
    moved = still.model_copy(update={"moved_from": OLD, "config_path": NEW})
    assert plan_id("r", [still]) != plan_id("r", [moved])


def test_moved_plan_round_trips() -> None:
    """A plan with a move reads back equal from its file."""
    moved = change("a1").model_copy(update={"moved_from": OLD, "config_path": NEW})
    plan = plan_of([moved, change("a2")])
    assert load_plan(plan.to_json()) == plan


def test_survey_marks_the_moved_agents() -> None:
    """Preflight, told an agent's previous config path, plans it as a move."""
    repo = load_repo(tiny_files(agents=2))
    live = {n: LiveBox(n, BoxState.UNMANAGED) for n in repo.agents}
    names = sorted(repo.agents)
    found = survey(
        repo,
        desired_of(repo),
        live,
        target_revision="r",
        moved_from={names[0]: "/old/config.yaml", names[1]: "/etc/agent/config.yaml"},
    )
    by = {c.agent: c for c in found.changes}
    assert (by[names[0]].moved_from, by[names[0]].config_path) == (
        "/old/config.yaml",
        "/etc/agent/config.yaml",
    )
    assert by[names[1]].moved_from is None  # the same path: no move


def test_dry_run_shows_the_move() -> None:
    """`apply --dry-run` prints 'config path /a → /b' on the moved box's line."""
    moved = change("a1").model_copy(update={"moved_from": OLD, "config_path": NEW})
    plan = plan_of([moved])
    fleet: Any = SimpleNamespace(rollout=SimpleNamespace(stall_window_s=60.0))
    prepared: Any = SimpleNamespace(
        plan=plan,
        source=SimpleNamespace(repo=SimpleNamespace(fleet=fleet)),
        left_out={},
        orphans=[],
    )
    with progress.out.capture() as shown:
        progress.show_plan(prepared, Format.text)
    assert f"a1: write+reload: prompt; config path {OLD} → {NEW}" in shown.get()
