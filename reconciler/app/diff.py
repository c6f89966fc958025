"""Diff: what a change does to the fleet, agent by agent and field by field.

Pull-request mode (`base` given) reads both revisions from git objects (the work
tree is never touched) and needs no access to the fleet. It serves CI on a pull
request, so every trust and review setting comes from the base revision, never the
head: the review rules and cost markers judging the diff are the base's
(`diff_repos`), and the fleet is not contacted, so the head's connection settings,
known_hosts and Prometheus URL are never used (their changes are listed as [access]);
only the base's Prometheus, for the traffic of a cost estimate (read-only queries).
Live mode (no revisions: the work tree against the running boxes) is built on the
same core.

Cost estimates (docs/cost.md) need traffic: live mode measures it from the boxes'
metrics over `cost_window_s` (only when a cost-impacting change or a removal is
there to price); pull-request mode asks the Prometheus server the BASE revision's
fleet.yaml names (read-only instant queries), else reads usage.yaml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reconciler.alerts import GROUP_HASH_LABEL, compile_alerts
from reconciler.app.config import load_config
from reconciler.app.state import Tell
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import AgentStatus, FleetDiff, diff_live, diff_repos
from reconciler.diff.cost import Traffic, usage_traffic
from reconciler.diff.model import FieldChange, SecretFileChange
from reconciler.diff.secretfiles import changed_secrets, recipients_change, secret_file_changes
from reconciler.engine.gatesetup import metric_source
from reconciler.engine.session import find_moves
from reconciler.errors import Refused
from reconciler.metrics.source import SourceError
from reconciler.metrics.usage import live_traffic, prometheus_traffic
from reconciler.model.agent import Agent
from reconciler.model.live import BoxState, LiveBox
from reconciler.repo import GitError, read_revision, read_secret_files
from reconciler.secrets.desired import referenced
from reconciler.secretstore import desired_fingerprints, fleet_key
from reconciler.secretstore.revisions import compare_encrypted, revision_fingerprints
from reconciler.transport.base import TransportError
from reconciler.transport.http import HttpProbe
from reconciler.transport.link import FleetLink, former_agents
from reconciler.transport.prometheus import PrometheusClient
from reconciler.transport.promrules import LoadedAlert, loaded_alerts

# How long live mode watches the boxes' own /metrics for traffic: the demo's agents finish
# tens of tasks in it; a real fleet wants longer (--cost-window), or Prometheus.
LIVE_WINDOW_S: Final = 5.0
# The range Prometheus averages traffic over (a day of the daily cycle).
PROMETHEUS_WINDOW_S: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class DiffRequest:
    """Live mode without `base`; pull-request mode with it (`head` default HEAD)."""

    repo: Path
    base: str | None = None
    head: str | None = None
    costs: Path | None = None  # JSON {agent: USD per day now}, for cost estimates
    cost_window_s: float | None = None  # traffic window; None: the source's default, 0: none


@dataclass(frozen=True, slots=True)
class DiffResult:
    """The fleet diff, and the boxes live mode could not read (unreachable or unreadable)."""

    diff: FleetDiff
    unknown: tuple[LiveBox, ...] = ()


def _label(rev: str, sha: str) -> str:
    return sha[:12] if sha.startswith(rev) else f"{rev} ({sha[:12]})"


def load_revision(repo: Path, rev: str, which: str) -> tuple[Repo, str]:
    """The config repo at `rev` and its label; Refused (each config error a detail) if not."""
    try:
        revision = read_revision(repo, rev)
    except GitError as exc:
        raise Refused(
            f"{which} revision: {exc}; pass a commit, branch or tag that exists in {repo}"
        ) from None
    label = _label(rev, revision.sha)
    try:
        return load_repo(revision.files), label
    except ConfigErrors as exc:
        raise Refused(
            f"{len(exc.errors)} config error(s) in the {which} revision {label}; "
            f"fix them (`git checkout {rev}` and `reconcile validate`) before diffing",
            tuple(f"{which} {label}: {e}" for e in exc.errors),
        ) from None


def _costs(path: Path) -> dict[str, float]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"--costs {path}: cannot read it as JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in doc.items()
    ):
        raise Refused(f"--costs {path}: expected a JSON object of agent name -> USD per day")
    return {k: float(v) for k, v in doc.items()}


async def _read_live(
    loaded: Repo, root: Path, link: FleetLink
) -> tuple[list[LiveBox], dict[str, Agent]]:
    """Every box as it runs (a box not yet moved to its new config path: read at the old
    one, and named in the second result), then the orphans."""
    agents = [ea.agent for ea in loaded.agents.values()]
    key = fleet_key(loaded.fleet, root)
    live = await link.read(agents, loaded.fleet.fleet_id, key)
    moves = await find_moves(link, root, live, agents, loaded.fleet.fleet_id, key)
    former = former_agents(root, live.values(), loaded.agents.keys())
    orphans = await link.orphans(agents, loaded.fleet.fleet_id, former)
    boxes = list(live.values())
    for o in orphans:
        boxes.append(
            LiveBox(o.agent, BoxState.MANAGED, reason=f"orphan at {o.host}:{o.port} {o.stamp_path}")
        )
    return boxes, moves


def _to_price(d: FleetDiff) -> list[str]:
    """Agents whose cost estimate needs traffic: cost-impacting changes and removals."""
    return [
        a.agent
        for a in d.agents
        if a.cost is not None and (a.cost_impacting or a.status is AgentStatus.REMOVED)
    ]


async def _prometheus(
    url: str, agents: list[str], window_s: float, label: str, tell: Tell
) -> dict[str, Traffic]:
    client = PrometheusClient(url)
    try:
        return await prometheus_traffic(client, agents, window_s, agent_label=label)
    except SourceError as exc:
        tell(f"cost estimate: no traffic from Prometheus ({exc})")
        return {}
    finally:
        await client.close()


async def _live_traffic(
    loaded: Repo, agents: list[str], probe: HttpProbe, window: float | None, tell: Tell
) -> dict[str, Traffic]:
    """The boxes' traffic for the cost estimate (their metrics, or Prometheus)."""
    m = loaded.fleet.metrics
    if m.source == "prometheus" and m.prometheus_url:
        return await _prometheus(
            m.prometheus_url, agents, window or PROMETHEUS_WINDOW_S, m.agent_label, tell
        )
    seconds = LIVE_WINDOW_S if window is None else window
    tell(f"measuring {len(agents)} agent(s)' traffic for the cost estimate ({seconds:g} s) ...")
    source = metric_source(loaded, probe, loaded.fleet.connection.command_timeout_s)
    try:
        got, why = await live_traffic(
            source, agents, seconds, label="live metrics of each box (scrape)"
        )
    except SourceError as exc:
        tell(f"cost estimate: no traffic measured ({exc})")
        return {}
    finally:
        await source.close()
    for agent, reason in sorted(why.items())[:5]:
        tell(f"cost estimate: no traffic for {agent}: {reason}")
    return got


async def _pr_traffic(
    base: Repo, head: Repo, window: float | None, tell: Tell
) -> dict[str, Traffic]:
    """Pull-request traffic: the base's Prometheus (never the head's), else usage.yaml."""
    tiers = {n: ea.agent.tier for n, ea in (*base.agents.items(), *head.agents.items())}
    m = base.fleet.metrics
    if m.prometheus_url and window != 0:
        got = await _prometheus(
            m.prometheus_url,
            sorted(base.agents),
            window or PROMETHEUS_WINDOW_S,
            m.agent_label,
            tell,
        )
        if got:
            return got
    usage = base.usage or head.usage
    return usage_traffic(usage, tiers) if usage is not None else {}


async def _live_alerts(loaded: Repo, tell: Tell) -> dict[str, str] | None:
    """The alerting rules of this fleet's groups the Prometheus box has loaded (None: no
    Prometheus box, or it cannot be read; then alerts are not compared)."""
    box = loaded.fleet.prometheus
    if box is None:
        return None
    prefix = f"reconciler/{loaded.fleet.fleet_id}/"
    try:
        live = await loaded_alerts(
            "prometheus", box.url, prefix, hash_label=GROUP_HASH_LABEL, timeout=10.0
        )
    except TransportError as exc:
        tell(f"alert rules not compared: {exc}")
        return None
    return as_compiled(loaded, live)


def as_compiled(loaded: Repo, live: dict[str, LoadedAlert]) -> dict[str, str]:
    """Alert name -> PromQL as loaded. Prometheus prints PromQL in its own form ([7d] as
    [1w]), so an alert whose group is loaded with the content hash the repo compiles to is
    given the repo's own expression (it is the same); the others keep Prometheus's text."""
    compiled = compile_alerts(loaded)
    out: dict[str, str] = {}
    for name, alert in live.items():
        same = alert.group_hash is not None and compiled.groups.get(alert.group) == alert.group_hash
        out[name] = (
            compiled.expressions[name] if same and name in compiled.expressions else (alert.query)
        )
    return out


@dataclass(frozen=True, slots=True)
class _PrSecrets:
    files: tuple[SecretFileChange, ...]
    recipients: tuple[FieldChange, ...]
    base: dict[str, str] | None  # agent -> secrets-file fingerprint (None: not checked)
    head: dict[str, str] | None


def _secret_files(root: Path, base: str, head: str, base_repo: Repo, head_repo: Repo) -> _PrSecrets:
    """The encrypted secret files the pull request changes, its recipients list change and,
    when this machine holds the fleet key and values, each agent's secrets-file fingerprint
    on both sides. The key, identity and value settings are the BASE revision's."""
    try:
        was, now = read_secret_files(root, base).files, read_secret_files(root, head).files
    except GitError as exc:  # the revisions were just read: only a racing change gets here
        raise Refused(f"secret files: {exc}") from None
    except ConfigErrors as exc:
        raise Refused(
            f"{len(exc.errors)} problem(s) with the secret files of the revisions",
            tuple(str(e) for e in exc.errors),
        ) from None
    kinds = changed_secrets(was, now)
    sides = {n: (was.get(f"secrets/{n}.age"), now.get(f"secrets/{n}.age")) for n in kinds}
    checks = compare_encrypted(sides, base_repo.fleet, root.resolve())
    refs = referenced(head_repo).values()  # who gets the value once merged
    users = {name: sum(name in names for names in refs) for name in kinds}
    where = root.resolve()
    return _PrSecrets(
        files=secret_file_changes(kinds, checks, users),
        recipients=recipients_change(was, now),
        base=revision_fingerprints(base_repo, was, base_repo.fleet, where),
        head=revision_fingerprints(head_repo, now, base_repo.fleet, where),
    )


async def diff(req: DiffRequest, tell: Tell) -> DiffResult:
    """The fleet diff of the request's mode (see the module docstring)."""
    cost_now = _costs(req.costs) if req.costs is not None else None
    if req.base is None:
        if req.head is not None:
            raise Refused("--head needs --base: pass both revisions to compare, e.g. --base main")
        loaded = load_config(req.repo)
        root = req.repo.resolve()
        tell(f"reading {len(loaded.agents)} boxes ...")
        desired = desired_fingerprints(loaded, root)
        async with FleetLink(loaded.fleet.connection, root) as link:
            boxes, moves = await _read_live(loaded, root, link)
            live_alerts = await _live_alerts(loaded, tell)
            fleet_diff = diff_live(
                loaded, boxes, head_label="work tree", desired_secrets=desired,
                cost_per_day=cost_now, live_alerts=live_alerts, moves=moves,
            )  # fmt: skip
            to_price = _to_price(fleet_diff)
            if to_price and req.cost_window_s != 0 and loaded.fleet.prices is not None:
                traffic = await _live_traffic(loaded, to_price, link.probe, req.cost_window_s, tell)
                if traffic:
                    fleet_diff = diff_live(
                        loaded, boxes, head_label="work tree", desired_secrets=desired,
                        cost_per_day=cost_now, traffic=traffic, live_alerts=live_alerts,
                        moves=moves,
                    )  # fmt: skip
        return DiffResult(fleet_diff, tuple(b for b in boxes if b.state is BoxState.UNKNOWN))
    base_repo, base_label = load_revision(req.repo, req.base, "base")
    head_repo, head_label = load_revision(req.repo, req.head or "HEAD", "head")

    secrets = _secret_files(req.repo, req.base, req.head or "HEAD", base_repo, head_repo)

    def run(traffic: dict[str, Traffic] | None = None) -> FleetDiff:
        return diff_repos(
            base_repo,
            head_repo,
            base_label=base_label,
            head_label=head_label,
            cost_per_day=cost_now,
            traffic=traffic,
            base_secrets=secrets.base,
            head_secrets=secrets.head,
            secret_files=secrets.files,
            recipients=secrets.recipients,
        )

    fleet_diff = run()
    if _to_price(fleet_diff) and head_repo.fleet.prices is not None:
        traffic = await _pr_traffic(base_repo, head_repo, req.cost_window_s, tell)
        if traffic:
            fleet_diff = run(traffic)
    return DiffResult(fleet_diff)
