"""The gate runner of one apply: its metric source and policy, from fleet.yaml and the plan.

Every agent of the fleet is measured (the unchanged ones are the baseline);
an agent's cohort is the sha of what it runs before the change (the plan's
pre-change sha, else its desired config), so peers are agents that ran the
same config. `metrics.source` picks the direct scrape (the command's HTTP
probe) or Prometheus (its own HTTP client, closed by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.config.repo import Repo
from reconciler.engine.gaterun import GatePolicy, GateRunner, merge_gates
from reconciler.errors import InputError
from reconciler.gates import AgentInfo
from reconciler.metrics.scrape import ScrapeSource
from reconciler.metrics.source import MetricSource
from reconciler.plan.model import Plan
from reconciler.rollout.clock import Clock
from reconciler.transport.http import HttpProbe


class GateSetupError(InputError):
    """fleet.yaml's metrics settings cannot work (e.g. prometheus without a URL)."""


def poll_interval(soak_s: float, scrape_interval_s: float) -> float:
    """How often an inconclusive wave is measured again: a quarter soak, 1 s .. the interval."""
    return max(1.0, min(scrape_interval_s, soak_s / 4))


def gate_policy(repo: Repo, plan: Plan, shas: Mapping[str, str]) -> GatePolicy:
    """The gates, each tier's merged gate list, and every agent's shard, tier and cohort."""
    fleet = repo.fleet
    info = {}
    for name, ea in repo.agents.items():
        a = ea.agent
        step = next((b for b in plan.boxes if b.agent == name), None)
        cohort = (step.pre_sha if step is not None else None) or shas.get(name, "")
        info[name] = AgentInfo(name, a.tier, a.shard, cohort)
    tier_gates = {t: merge_gates(fleet.gates, tf.gates) for t, tf in repo.tiers.items()}
    soak = max((w.soak_s for w in plan.waves), default=fleet.rollout.soak_s)
    m = fleet.metrics
    return GatePolicy(
        gates=tuple(fleet.gates),
        tier_gates=tier_gates,
        info=info,
        retries=m.retries,
        retry_delay_s=m.retry_delay_s,
        inconclusive_wait_s=m.inconclusive_wait_s,
        poll_s=poll_interval(soak, m.scrape_interval_s),
        stale_after_s=m.stale_after_s or 3 * m.scrape_interval_s,
    )


def metric_source(repo: Repo, probe: HttpProbe, timeout: float) -> MetricSource:
    """The source fleet.yaml names."""
    m = repo.fleet.metrics
    if m.source == "prometheus":
        from reconciler.metrics.promsource import PrometheusSource  # noqa: PLC0415

        if not m.prometheus_url:
            raise GateSetupError(
                "fleet.yaml: metrics.source is prometheus but metrics.prometheus_url is not set; "
                "set it to the Prometheus base URL (http://host:9090)"
            )
        gates = [*repo.fleet.gates, *(g for t in repo.tiers.values() for g in t.gates or ())]
        custom = {g.name: g.query for g in gates if g.metric == "custom" and g.query}
        return PrometheusSource(
            m.prometheus_url,
            agent_label=m.agent_label,
            queries=m.queries,
            custom=custom,
            timeout=timeout,
        )
    urls = {n: ea.agent.url(ea.agent.metrics_url) for n, ea in repo.agents.items()}
    hosts = {n: ea.agent.host for n, ea in repo.agents.items()}
    return ScrapeSource(probe, urls, timeout=timeout, hosts=hosts)


def gate_runner(
    repo: Repo, plan: Plan, shas: Mapping[str, str], probe: HttpProbe, timeout: float, clock: Clock
) -> GateRunner | None:
    """The runner for this apply, or None when the fleet defines no gates."""
    if not repo.fleet.gates and not any(t.gates for t in repo.tiers.values()):
        return None
    return GateRunner(metric_source(repo, probe, timeout), gate_policy(repo, plan, shas), clock)
