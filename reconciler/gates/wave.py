"""A wave's gates: every gate's verdict for the changed agents of a wave. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from reconciler.gates.pools import choose_pools, spread_pools
from reconciler.gates.verdict import GateVerdict, evaluate
from reconciler.gates.windows import AgentInfo, AgentWindow
from reconciler.model.fleet import Gate


def judge_wave(
    gates_for: Callable[[str], Sequence[Gate]],
    info: Mapping[str, AgentInfo],
    canary: Mapping[str, AgentWindow],
    unchanged: Mapping[str, AgentWindow],
    before: Mapping[str, AgentWindow],
    problems: Mapping[str, str] | None = None,
) -> list[GateVerdict]:
    """Every gate's verdict for the changed agents (`canary` and those in `problems`).

    `gates_for(tier)` is the gate list of a tier (fleet gates with the tier's
    overrides); a gate whose settings differ between tiers is judged per
    setting, and named with its tiers.
    """
    problems = dict(problems or {})
    spread = spread_pools(info, unchanged)
    verdicts = []
    for gate, agents in _gates_and_agents(gates_for, info, [*canary, *problems]):
        windows = [canary[a] for a in agents if a in canary]
        pools = choose_pools(
            [w.agent for w in windows], info, unchanged, before, gate.min_samples, gate.baseline
        )
        agent_problems = {a: problems[a] for a in agents if a in problems}
        verdicts.append(
            evaluate(
                gate,
                windows,
                pools,
                problems=agent_problems,
                confidence=gate.confidence,
                spread=spread,
            )
        )
    return verdicts


def _gates_and_agents(
    gates_for: Callable[[str], Sequence[Gate]],
    info: Mapping[str, AgentInfo],
    changed: Sequence[str],
) -> list[tuple[Gate, list[str]]]:
    """Each gate setting with the changed agents it applies to (agents in name order).

    A gate whose settings differ between tiers comes once per setting, named
    with its tiers: "latency (fast, slow)".
    """
    groups: dict[str, dict[Gate, list[str]]] = {}
    for name in sorted(set(changed)):
        tier = info[name].tier if name in info else ""
        for gate in gates_for(tier):
            groups.setdefault(gate.name, {}).setdefault(gate, []).append(name)
    out: list[tuple[Gate, list[str]]] = []
    for gate_name, by_setting in groups.items():
        for setting, agents in by_setting.items():
            gate = setting
            if len(by_setting) > 1:
                tiers = sorted({info[a].tier for a in agents if a in info})
                gate = setting.model_copy(update={"name": f"{gate_name} ({', '.join(tiers)})"})
            out.append((gate, agents))
    return out
