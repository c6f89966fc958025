"""Gates: is the wave's canary significantly worse than its baseline? Pure: no I/O, no clock.

A gate compares what the changed agents (the canary) did in a window with what
comparable unchanged agents (the baseline) did in the same window, and with
absolute limits. It answers PASS, FAIL or INCONCLUSIVE, always with its figures.

- windows.py: an agent's window and whether it is usable.
- pools.py: each canary agent's baseline pool.
- statistics.py: one-sided tests, critical values, dispersion, histograms.
- evaluators.py: per metric, the figures and the tests (one input type, `GateInput`).
- verdict.py: the tests and figures combined into one gate's verdict.
- wave.py: every gate's verdict for a wave.

Glossary (also in docs/gates.md):

- canary: the agents the change has reached (every wave so far) that are
  healthy; their windows are what is judged.
- baseline: what the canary is compared with: unchanged agents like it, or the
  same agent before the change.
- window: what one agent did between two instants: counter increases (tasks,
  errors, tokens, cost) and latency buckets (`AgentWindow`).
- pool: a group of baseline windows one or more canary agents are compared
  with, named by a `PoolKey` (its kind and what its members share).
- samples: tasks (for latency, tasks with a latency observation); a gate
  neither fails nor passes before the canary has `min_samples`, and a ratio
  gate does not pass before its baseline has them too.
- expected: what the canary's tasks would show at the baseline's rate or mean
  (indirect standardisation); observed / expected is the canary's ratio.
- ratio: `max_ratio`, the most the canary may be worse than the baseline;
  threshold = max_ratio x baseline.
- limit: `max`, an absolute upper bound on the canary's figure.
- dispersion: how much like agents differ beyond chance (1: no more than
  chance), estimated from the spread between like unchanged agents.
- significance: the one-sided test statistic `z` above the `critical` value
  at the gate's `confidence` (Student t with few agents, else normal).
- pass: enough samples and no significant harm (exactly at the threshold passes).
- fail: the figure strictly worse than the threshold AND significant.
- inconclusive: too few samples, no baseline, or an unusable canary window;
  never a pass (the driver re-measures, then fails).
"""

from reconciler.gates.evaluators import EVALUATORS, Evaluation, Figures, GateInput
from reconciler.gates.pools import (
    POOL_KINDS,
    Pool,
    PoolKey,
    baseline_members,
    choose_pools,
    distinct_pools,
    spread_pools,
)
from reconciler.gates.statistics import (
    P95,
    OneSidedTest,
    count_above,
    critical_value,
    quantile,
)
from reconciler.gates.verdict import GateVerdict, Outcome, evaluate
from reconciler.gates.wave import judge_wave
from reconciler.gates.windows import (
    MEAN_METRICS,
    AgentInfo,
    AgentWindow,
    merge_buckets,
    window_problem,
)

__all__ = [
    "EVALUATORS",
    "MEAN_METRICS",
    "P95",
    "POOL_KINDS",
    "AgentInfo",
    "AgentWindow",
    "Evaluation",
    "Figures",
    "GateInput",
    "GateVerdict",
    "OneSidedTest",
    "Outcome",
    "Pool",
    "PoolKey",
    "baseline_members",
    "choose_pools",
    "count_above",
    "critical_value",
    "distinct_pools",
    "evaluate",
    "judge_wave",
    "merge_buckets",
    "quantile",
    "spread_pools",
    "window_problem",
]
