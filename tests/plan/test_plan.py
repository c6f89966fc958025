"""The plan: actions per box, canary spread, determinism, plan id, plan files, stale plans."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from reconciler.model.fleet import Gate, Rollout
from reconciler.plan import (
    Activation,
    Change,
    Delivery,
    PathChange,
    PlanError,
    load_plan,
    make_plan,
    plan_id,
    verify_plan,
    wave_sizes,
)
from reconciler.secrets.values import SecretValues

from .builders import change, fleet_changes, plan_of, sha


class TestActions:
    def test_prompt_change_is_write_and_reload(self) -> None:
        """A change to a field that needs no restart is written and reloaded."""
        plan = plan_of([change("a1")])
        box = plan.box("a1")
        assert (box.delivery, box.activation, box.label) == (
            Delivery.WRITE,
            Activation.RELOAD,
            "write+reload",
        )

    def test_any_restart_required_path_makes_a_restart(self) -> None:
        """One restart-required path among others is enough for write+restart."""
        paths = (PathChange(path=("prompt",)), PathChange(path=("model",), restart_required=True))
        assert plan_of([change("a1", paths=paths)]).box("a1").activation is Activation.RESTART

    def test_target_in_box_history_is_a_restore(self) -> None:
        """A revert to a sha the box keeps in its history is restored, not transferred."""
        plan = plan_of([change("a1", desired="v1", history=("v2", "v1"))])
        assert plan.box("a1").delivery is Delivery.RESTORE
        assert plan.box("a1").label == "restore+reload"

    def test_unmanaged_box_is_adopted(self) -> None:
        """A box with no stamp is adopted; its pre-change sha is its file's."""
        box = plan_of([change("a1", stamp=None, live="hand-made")]).box("a1")
        assert box.adopt and not box.drifted
        assert box.pre_sha == sha("hand-made")

    def test_hand_edited_box_is_flagged_drifted(self) -> None:
        """A file that differs from its stamp is flagged; the pre-change sha is the file's."""
        box = plan_of([change("a1", live="edited")]).box("a1")
        assert box.drifted
        assert box.pre_sha == sha("edited")

    def test_cost_flag_comes_from_paths(self) -> None:
        """A box is cost-impacting when any of its changed paths is."""
        paths = (PathChange(path=("max_tokens",), cost_impacting=True),)
        assert plan_of([change("a1", paths=paths)]).box("a1").cost_impacting
        assert not plan_of([change("a1")]).box("a1").cost_impacting


class TestWaves:
    def test_reference_fleet_waves(self) -> None:
        """200 agents under the default policy: waves of 1, 4, 45 and 150, each soaked and gated."""
        plan = plan_of(fleet_changes(200))
        assert [len(w.agents) for w in plan.waves] == [1, 4, 45, 150]
        assert all(w.soak_s == 600 and w.gates == ("task-errors",) for w in plan.waves)
        assert plan.agents == tuple(a for w in plan.waves for a in w.agents)

    def test_first_two_waves_cover_every_shard_and_tier(self) -> None:
        """The canary and wave 2 together meet every shard and every tier."""
        plan = plan_of(fleet_changes(200))
        early = [plan.box(a) for w in plan.waves[:2] for a in w.agents]
        assert {b.shard for b in early} == {"us-east", "eu-west", "ap-south"}
        assert {b.tier for b in early} == {"fast", "smart", "batch"}

    def test_wave_two_starts_on_another_shard_and_tier(self) -> None:
        """The first box of wave 2 shares neither shard nor tier with the canary."""
        plan = plan_of(fleet_changes(20))
        canary, nxt = plan.box(plan.waves[0].agents[0]), plan.box(plan.waves[1].agents[0])
        assert canary.shard != nxt.shard and canary.tier != nxt.tier

    def test_input_order_does_not_matter(self) -> None:
        """Shuffled input gives the very same plan."""
        changes = fleet_changes(60)
        shuffled = changes[:]
        random.Random(7).shuffle(shuffled)
        assert plan_of(shuffled) == plan_of(changes)

    def test_no_changes_give_an_empty_plan(self) -> None:
        """Nothing to change: no waves, no boxes, still a valid plan."""
        plan = plan_of([])
        assert plan.empty and plan.waves == () and plan.failure_budget == 0

    def test_agent_listed_twice_is_refused(self) -> None:
        """Two changes for one agent name are a planning error naming it."""
        with pytest.raises(PlanError, match="listed twice in the changes: a1") as err:
            plan_of([change("a1"), change("a1", shard="eu-west")])
        assert err.value.agents == ("a1",)

    def test_orphans_are_listed_and_left_alone(self) -> None:
        """Orphans appear sorted in the plan and in no wave."""
        plan = make_plan(
            [change("a1")],
            fleet_id="f",
            target_revision="r",
            policy=Rollout(),
            orphans=["zz-old", "aa-old", "zz-old"],
        )
        assert plan.orphans == ("aa-old", "zz-old")
        assert "aa-old" not in plan.agents

    @given(
        n=st.integers(min_value=0, max_value=3000),
        counts=st.lists(st.integers(min_value=1, max_value=500), max_size=3),
        percents=st.lists(st.integers(min_value=1, max_value=99), max_size=3),
    )
    def test_waves_partition_the_agents(
        self, n: int, counts: list[int], percents: list[int]
    ) -> None:
        """Any valid policy: non-empty waves whose sizes add up to exactly n."""
        entries: list[int | str] = [*counts, *(f"{p}%" for p in percents), "100%"]
        sizes = wave_sizes(entries, n)
        assert sum(sizes) == n
        assert all(s > 0 for s in sizes)
        if counts and n:
            assert sizes[0] <= max(counts[0], 1)


class TestPlanId:
    def test_same_inputs_same_id(self) -> None:
        """The id is a function of revision and box fingerprints, not of input order."""
        changes = fleet_changes(10)
        assert plan_id("r", changes) == plan_id("r", list(reversed(changes)))

    def test_id_changes_with_revision_stamp_and_file(self) -> None:
        """Another revision, stamp or file sha gives another id."""
        base = plan_id("r", [change("a1")])
        assert plan_id("r2", [change("a1")]) != base
        assert plan_id("r", [change("a1", stamp="other")]) != base
        assert plan_id("r", [change("a1", live="other")]) != base
        assert plan_id("r", [change("a1", revision="rev-0")]) != base

    def test_id_ignores_what_is_not_box_state(self) -> None:
        """Tier, shard and field flags are not part of the id (health never is)."""
        assert plan_id("r", [change("a1")]) == plan_id("r", [change("a1", tier="batch")])


class TestPlanFile:
    def test_plan_round_trips_through_json(self) -> None:
        """A plan written to a file reads back equal."""
        plan = plan_of(fleet_changes(30), budget="10%")
        assert load_plan(plan.to_json()) == plan

    def test_hand_edited_waves_are_refused(self) -> None:
        """Moving an agent between waves, or shortening a soak, in the file is detected."""
        doc = json.loads(plan_of(fleet_changes(12)).to_json())
        moved = json.loads(json.dumps(doc))
        moved["waves"][0]["agents"].append(moved["waves"][1]["agents"].pop())
        shorter = json.loads(json.dumps(doc))
        shorter["waves"][2]["soak_s"] = 1.0
        for edited in (moved, shorter):
            with pytest.raises(PlanError, match="does not match its own content"):
                load_plan(json.dumps(edited))

    def test_not_a_plan_is_refused_with_the_field(self) -> None:
        """A JSON file that is not a plan names the bad field."""
        with pytest.raises(PlanError, match="not a plan file: plan_id"):
            load_plan('{"plan_id": "nope"}')

    def test_plan_made_with_other_gates_is_refused(self) -> None:
        """When the fleet's gates are given, a plan made with others does not load."""
        plan = plan_of(fleet_changes(3))
        with pytest.raises(PlanError):
            load_plan(plan.to_json(), gates=[Gate(name="latency", metric="latency_p95")])

    def test_secret_values_never_enter_a_plan(self) -> None:
        """A SecretValues object where a plan wants text is refused, its value never shown."""
        secret = SecretValues({"anthropic_api_key": "sk-live-very-secret"})
        with pytest.raises(ValidationError) as err:
            Change(
                agent="a1",
                tier="fast",
                shard=secret,  # type: ignore[arg-type]
                desired_sha=sha("x"),
                live_sha=None,
                stamp_sha=None,
                stamp_revision=None,
            )
        assert "sk-live-very-secret" not in str(err.value)
        assert "sk-live-very-secret" not in plan_of(fleet_changes(3)).to_json()


class TestVerify:
    def test_unmoved_boxes_pass(self) -> None:
        """The same input read again verifies."""
        changes = fleet_changes(8)
        verify_plan(plan_of(changes), list(reversed(changes)))

    def test_moved_box_is_named(self) -> None:
        """A box whose stamp moved since the plan is named in the refusal."""
        changes = fleet_changes(8)
        plan = plan_of(changes)
        now = [change("agent-0003", shard="us-east", tier="smart", stamp="new-stamp"), *changes]
        now = [c for c in now if c.agent != "agent-0003" or c.stamp_sha == sha("new-stamp")]
        with pytest.raises(PlanError, match="changed since the plan: agent-0003") as err:
            verify_plan(plan, now)
        assert err.value.agents == ("agent-0003",)

    def test_new_and_gone_agents_are_named(self) -> None:
        """An agent that now changes, and one that no longer does, are both named."""
        changes = fleet_changes(4)
        plan = plan_of(changes)
        now = [*changes[1:], change("agent-new")]
        with pytest.raises(PlanError) as err:
            verify_plan(plan, now)
        assert "not in the plan: agent-new" in str(err.value)
        assert "no longer changing: agent-0000" in str(err.value)
        assert "reconcile apply --dry-run" in str(err.value)
