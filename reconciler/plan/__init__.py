"""Plan: the changing agents + policy -> waves, per-box actions and a budget, before any touch."""

from reconciler.plan.build import box_step, load_plan, make_plan
from reconciler.plan.errors import PlanError
from reconciler.plan.identity import fingerprint, plan_id, verify_plan
from reconciler.plan.model import (
    Activation,
    BoxStep,
    Change,
    Delivery,
    PathChange,
    Plan,
    Policy,
    RulesStep,
    Wave,
)
from reconciler.plan.order import rollout_order, spread_groups
from reconciler.plan.waves import budget_count, wave_sizes, wave_totals

__all__ = [
    "Activation",
    "BoxStep",
    "Change",
    "Delivery",
    "PathChange",
    "Plan",
    "PlanError",
    "Policy",
    "RulesStep",
    "Wave",
    "box_step",
    "budget_count",
    "fingerprint",
    "load_plan",
    "make_plan",
    "plan_id",
    "rollout_order",
    "spread_groups",
    "verify_plan",
    "wave_sizes",
    "wave_totals",
]
