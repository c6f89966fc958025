"""Changes + target revision + policy + gates -> Plan; and a plan file read back, checked.

Pure and deterministic: the input order of the changes does not matter, the
output order is `rollout_order`'s. Orphans (boxes stamped by this fleet with
no agent in the repo) are listed and left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import ValidationError

from reconciler.model.fleet import Gate, Rollout
from reconciler.plan.errors import PlanError
from reconciler.plan.identity import plan_id
from reconciler.plan.model import (
    Activation,
    BoxStep,
    Change,
    Delivery,
    Plan,
    Policy,
    Wave,
)
from reconciler.plan.order import rollout_order
from reconciler.plan.waves import budget_count, wave_totals


def box_step(change: Change) -> BoxStep:
    """The action for one box: restart when any changed path needs it; restore from history,
    unless the config moves (the history lives beside the old path: a move is written)."""
    restart = any(p.restart_required for p in change.paths)
    moved = change.moved_from is not None and change.moved_from != change.config_path
    restore = (
        not moved
        and change.desired_sha in change.history_shas
        and change.live_sha != change.desired_sha
    )
    return BoxStep(
        agent=change.agent,
        tier=change.tier,
        shard=change.shard,
        delivery=Delivery.RESTORE if restore else Delivery.WRITE,
        activation=Activation.RESTART if restart else Activation.RELOAD,
        target_sha=change.desired_sha,
        pre_sha=change.live_sha,
        stamp_sha=change.stamp_sha,
        stamp_revision=change.stamp_revision,
        history_shas=change.history_shas,
        paths=change.paths,
        secrets=change.secrets,
        moved_from=change.moved_from,
        config_path=change.config_path,
    )


def make_plan(
    changes: Sequence[Change],
    *,
    fleet_id: str,
    target_revision: str,
    policy: Rollout,
    gates: Sequence[Gate] = (),
    orphans: Sequence[str] = (),
) -> Plan:
    """The plan that moves `changes` to `target_revision` in waves.

    Raises:
        PlanError: an agent listed twice, or a policy whose waves or budget are invalid.
    """
    twice = sorted(a for a, k in Counter(c.agent for c in changes).items() if k > 1)
    if twice:
        raise PlanError(f"agents listed twice in the changes: {', '.join(twice)}", agents=twice)
    ordered = rollout_order(changes)
    totals = wave_totals(policy.waves, len(ordered))
    gate_names = tuple(g.name for g in gates)
    steps = {c.agent: box_step(c) for c in ordered}

    def wave(i: int, agents: tuple[str, ...]) -> Wave:
        # A revert (every box restores a config it ran) keeps its waves and the watchdog,
        # but skips soak and gates: the way back must be fast.
        revert = all(steps[a].delivery is Delivery.RESTORE for a in agents)
        soak, names = (0.0, ()) if revert else (policy.soak_s, gate_names)
        return Wave(index=i, agents=agents, soak_s=soak, gates=names)

    waves = tuple(
        wave(i, tuple(c.agent for c in ordered[start:end]))
        for i, (start, end) in enumerate(zip([0, *totals], totals, strict=False))
    )
    return Plan(
        plan_id=plan_id(target_revision, changes),
        fleet_id=fleet_id,
        target_revision=target_revision,
        policy=Policy(
            waves=tuple(policy.waves),
            soak_s=policy.soak_s,
            failure_budget=policy.failure_budget,
        ),
        waves=waves,
        boxes=tuple(steps[c.agent] for c in ordered),
        failure_budget=budget_count(policy.failure_budget, len(ordered)),
        orphans=tuple(sorted(set(orphans))),
    )


def load_plan(text: str | bytes, gates: Sequence[Gate] | None = None) -> Plan:
    """A plan file read back, and checked to be exactly what `make_plan` gives for its inputs.

    `gates`: the fleet's gates now; when given, a plan made with other gates is refused.

    Raises:
        PlanError: not a plan file, or a plan edited by hand (its id or waves do not match).
    """
    try:
        plan = Plan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise PlanError(
            f"not a plan file: {where}: {first['msg']}; write one with `reconcile apply --dry-run`"
        ) from None
    names = next((w.gates for w in plan.waves if w.gates), ())
    again = make_plan(
        [b.as_change() for b in plan.boxes],
        fleet_id=plan.fleet_id,
        target_revision=plan.target_revision,
        policy=Rollout(
            waves=list(plan.policy.waves),
            soak_s=plan.policy.soak_s,
            failure_budget=plan.policy.failure_budget,
        ),
        gates=gates if gates is not None else [Gate(name=n, metric="custom") for n in names],
        orphans=plan.orphans,
    )
    if again != plan:
        raise PlanError(
            f"plan {plan.plan_id[:12]} does not match its own content (edited by hand?); "
            "make a new plan with `reconcile apply --dry-run`"
        )
    return plan
