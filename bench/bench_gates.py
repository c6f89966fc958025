"""How well the example's default gates protect a 200-agent fleet, in simulated time.

Each trial rolls one change out to all 200 agents of fleet-config-example with
its default policy (waves 1, 5, 25%, 100%; soak 600 s; the four gates) and
judges every wave with the product's own `judge_wave`. The agents' metrics
follow the demo agents' model (reconciler/demo/workload.py: the tier's model,
max_tokens and prompt set tokens, cost and latency; base error rate 1%) with
the noise printed below; nothing sleeps. Per scenario it prints how often the
change reached 100% of the fleet, how often it was rolled back, the mean
blast radius (agents that ever ran it) and the mean time to the decision.

Run: .venv/bin/python bench/bench_gates.py [--trials 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.config.repo import load_repo
from reconciler.demo.workload import Behaviour, behaviour
from reconciler.gates import AgentInfo, AgentWindow, Outcome, judge_wave
from reconciler.model.box import LATENCY_BUCKETS
from reconciler.plan.waves import wave_totals
from reconciler.render.canonical import render_payload, sha256_hex
from reconciler.repo import read_work_tree

EXAMPLE = Path(__file__).resolve().parent.parent / "fleet-config-example"
BASE_ERROR_RATE = 0.01
RATE = 2.0  # tasks per second per agent, at load 1
AGENT_ERR_SIGMA = 0.2  # per-agent error-rate multiplier: lognormal sigma
AGENT_TOKENS_SIGMA = 0.03  # per-agent tokens multiplier (traffic mix)
AGENT_LATENCY_SIGMA = 0.05  # per-agent latency multiplier
LOAD_SWING = 0.4  # load = 1 +/- 0.4 over a 4 h day, phase per shard
LOAD_PERIOD_S = 4 * 3600
LOAD_NOISE = 0.1  # per window and shard, gaussian on top
ERRORS_PER_LOAD = 0.3  # error rate x (1 + 0.3 (load - 1))
POLL_S = 60.0  # how often an inconclusive wave is judged again

SCENARIOS = {
    "errors x2": {"errors": 2.0},
    "cost per task x1.5": {"cost": 1.5},
    "output tokens x6": {"tokens_out": 6.0},
    "neutral": {},
}
BAD = ("errors x2", "cost per task x1.5", "output tokens x6")


@dataclass
class Agent:
    name: str
    shard: str
    tier: str
    how: Behaviour
    err: float
    tok: float
    lat: float


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    mean = n * p
    if mean < 30:
        return min(n, _poisson(rng, mean))
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))


def _lognorm_cdf(x: float, mu: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2))))


class Fleet:
    """The example's agents and the demo model's behaviour of each."""

    def __init__(self) -> None:
        repo = load_repo(read_work_tree(EXAMPLE))
        self.gates = list(repo.fleet.gates)
        self.policy = repo.fleet.rollout
        secrets = {"anthropic_api_key": "sk-demo-bench", "kb_token": "kb"}
        self.agents: list[tuple[str, str, str, Behaviour]] = []
        self.info: dict[str, AgentInfo] = {}
        for name, ea in sorted(repo.agents.items()):
            a = ea.agent
            how = behaviour(a.config, secrets, base_error_rate=BASE_ERROR_RATE)
            self.agents.append((name, a.shard, a.tier, how))
            cohort = sha256_hex(render_payload(a.config))  # what it runs before the change
            self.info[name] = AgentInfo(name, a.tier, a.shard, cohort)
        self.gates_for = lambda _tier: self.gates


def _window(
    rng: random.Random, a: Agent, start: float, dt: float, load: float, effect: dict[str, float]
) -> AgentWindow:
    how = a.how
    n = _poisson(rng, RATE * load * dt)
    p = how.error_rate * a.err * (1 + ERRORS_PER_LOAD * (load - 1)) * effect.get("errors", 1.0)
    errors = _binomial(rng, n, min(1.0, p))
    ok = n - errors
    k_out = effect.get("tokens_out", 1.0)
    out_mean = how.tokens_out * a.tok * k_out
    tin_mean = how.tokens_in * a.tok
    tokens_out = max(0.0, rng.gauss(ok * out_mean, math.sqrt(ok) * 0.2 * out_mean))
    tokens_in = max(0.0, rng.gauss(ok * tin_mean, math.sqrt(ok) * 0.1 * tin_mean))
    cost = (tokens_in * how.usd_per_token_in + tokens_out * how.usd_per_token_out) * effect.get(
        "cost", 1.0
    )
    # latency: successes lognormal(mean latency, sigma 0.3), failures 0.1 s; bucketed
    latency = how.latency_s * a.lat
    if k_out != 1.0:
        latency += 0.003 * how.tokens_out * (k_out - 1) * a.tok  # longer answers take longer
    sigma = 0.3
    mu = math.log(latency) - sigma * sigma / 2
    buckets = []
    left, cum, prev_cdf = ok, 0, 0.0
    for le in LATENCY_BUCKETS:
        cdf = _lognorm_cdf(le, mu, sigma)
        share = (cdf - prev_cdf) / (1 - prev_cdf) if prev_cdf < 1 else 0.0
        k = _binomial(rng, left, max(0.0, min(1.0, share)))
        left -= k
        cum += k
        prev_cdf = cdf
        fails = errors if le >= how.failed_latency_s else 0
        buckets.append((le, float(cum + fails)))
    buckets.append((math.inf, float(n)))
    return AgentWindow(
        a.name, start, start + dt, float(n), float(errors), tokens_in, tokens_out, cost,
        tuple(buckets),
    )  # fmt: skip


@dataclass
class Trial:
    reached_all: bool
    rolled_back: bool
    blast: int
    decision_s: float
    failed_gates: tuple[str, ...]
    failed_wave: int | None


def run_trial(fleet: Fleet, rng: random.Random, effect: dict[str, float]) -> Trial:
    agents = [
        Agent(n, s, t, how,
              rng.lognormvariate(-(AGENT_ERR_SIGMA**2) / 2, AGENT_ERR_SIGMA),
              rng.lognormvariate(0, AGENT_TOKENS_SIGMA),
              rng.lognormvariate(0, AGENT_LATENCY_SIGMA))
        for n, s, t, how in fleet.agents
    ]  # fmt: skip
    order = agents[:]
    rng.shuffle(order)
    totals = wave_totals(fleet.policy.waves, len(order))
    soak = fleet.policy.soak_s
    wait_limit = 600.0
    phase = {s: rng.uniform(0, 2 * math.pi) for s in sorted({a.shard for a in agents})}
    t0 = rng.uniform(0, LOAD_PERIOD_S)
    t = t0
    changed: set[str] = set()
    before: dict[str, AgentWindow] = {}
    for wave, total in enumerate(totals):
        for a in order[len(changed) : total]:
            changed.add(a.name)
        start, waited = t, 0.0
        windows: dict[str, AgentWindow] = {}
        dt = soak
        while True:
            mid = start + dt / 2
            load = {
                s: max(0.1, 1 + LOAD_SWING * math.sin(2 * math.pi * mid / LOAD_PERIOD_S + ph)
                       + rng.gauss(0, LOAD_NOISE))
                for s, ph in phase.items()
            }  # fmt: skip
            for a in agents:
                piece = _window(
                    rng, a, start + dt - (dt if a.name not in windows else POLL_S),
                    dt if a.name not in windows else POLL_S, load[a.shard],
                    effect if a.name in changed else {},
                )  # fmt: skip
                windows[a.name] = _add(windows.get(a.name), piece)
            canary = {n: w for n, w in windows.items() if n in changed}
            unchanged = {n: w for n, w in windows.items() if n not in changed}
            verdicts = judge_wave(fleet.gates_for, fleet.info, canary, unchanged, before)
            failed = [v for v in verdicts if v.outcome is Outcome.FAIL]
            pending = [v for v in verdicts if v.outcome is Outcome.INCONCLUSIVE]
            if failed or (pending and waited >= wait_limit):
                names = tuple(v.gate for v in failed or pending)
                return Trial(False, True, len(changed), start + dt - t0, names, wave + 1)
            if not pending:
                break
            dt += POLL_S
            waited += POLL_S
        before.update(unchanged)
        t = start + dt
    return Trial(True, False, len(changed), t - t0, (), None)


def _add(a: AgentWindow | None, b: AgentWindow) -> AgentWindow:
    if a is None:
        return b
    return AgentWindow(
        a.agent, a.start, b.end, a.tasks + b.tasks, a.errors + b.errors,
        a.tokens_in + b.tokens_in, a.tokens_out + b.tokens_out, a.cost + b.cost,
        tuple((le, x + y) for (le, x), (_, y) in zip(a.buckets, b.buckets, strict=True)),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    fleet = Fleet()
    n = len(fleet.agents)
    print(
        f"bench_gates: {args.trials} simulated rollouts per scenario, {n} agents, seed {args.seed}"
    )
    print(f"  policy: waves {fleet.policy.waves}, soak {fleet.policy.soak_s:g}s; gates:")
    for g in fleet.gates:
        print(f"    {g.name}: {g.metric} max_ratio={g.max_ratio} max={g.max} "
              f"min_samples={g.min_samples} confidence={g.confidence}")  # fmt: skip
    print(
        f"  model: demo workload, base error rate {BASE_ERROR_RATE:.0%}, {RATE:g} tasks/s/agent "
        f"at load 1; per-agent noise: errors x lognormal(sd {AGENT_ERR_SIGMA}), tokens x "
        f"lognormal(sd {AGENT_TOKENS_SIGMA}), latency x lognormal(sd {AGENT_LATENCY_SIGMA})"
    )
    print(f"  load swings: 1 +/- {LOAD_SWING} over {LOAD_PERIOD_S / 3600:g} h, phase per shard, "
          f"+ N(0, {LOAD_NOISE}) per window; error rate x (1 + {ERRORS_PER_LOAD} (load - 1)); "
          f"inconclusive re-judged every {POLL_S:g}s for up to 600s")  # fmt: skip
    print(f"{'scenario':22} {'reached 100%':>13} {'rolled back':>12} {'blast radius':>18} "
          f"{'time to decision':>17}  failing gates")  # fmt: skip
    results: dict[str, list[Trial]] = {}
    began = time.perf_counter()
    for name, effect in SCENARIOS.items():
        rng = random.Random(f"{args.seed}:{name}")
        trials = [run_trial(fleet, rng, effect) for _ in range(args.trials)]
        results[name] = trials
        reached = sum(t.blast == n for t in trials)  # ran on every agent, even if undone
        back = sum(t.rolled_back for t in trials)
        blast = sum(t.blast for t in trials) / len(trials)
        decide = sum(t.decision_s for t in trials) / len(trials)
        gates: dict[str, int] = {}
        for t in trials:
            for g in t.failed_gates:
                gates[g] = gates.get(g, 0) + 1
        waves: dict[int, int] = {}
        for t in trials:
            if t.failed_wave is not None:
                waves[t.failed_wave] = waves.get(t.failed_wave, 0) + 1
        top = ", ".join(f"{g} {c}" for g, c in sorted(gates.items(), key=lambda x: -x[1])[:3])
        at = ", ".join(f"w{w}:{c}" for w, c in sorted(waves.items()))
        print(f"{name:22} {reached:>6}/{len(trials):<6} {back:>5}/{len(trials):<6} "
              f"{blast:6.1f} ({blast / n:6.1%}) {decide / 60:13.1f} min  {top} [{at}]")  # fmt: skip
    elapsed = time.perf_counter() - began
    print(f"targets: bad change reaching 100%: 0 of {args.trials} each; mean blast radius of a bad "
          "change < 15%; neutral rolled back < 1%")  # fmt: skip
    ok = all(sum(t.blast == n for t in results[b]) == 0 for b in BAD)
    ok &= all(sum(t.blast for t in results[b]) / args.trials < 0.15 * n for b in BAD)
    ok &= sum(t.rolled_back for t in results["neutral"]) < 0.01 * args.trials
    print(f"targets {'MET' if ok else 'MISSED'}; {elapsed:.1f}s of CPU for "
          f"{args.trials * len(SCENARIOS)} rollouts")  # fmt: skip


if __name__ == "__main__":
    main()
