"""Diff: what a change does to the fleet, agent by agent and field by field.

Pull-request mode (`base` given) reads both revisions from git objects (the work
tree is never touched) and needs no access to the fleet. It serves CI on a pull
request, so every trust and review setting comes from the base revision, never the
head: the review rules and cost markers judging the diff are the base's
(`diff_repos`), and nothing is contacted, so the head's connection settings,
known_hosts and Prometheus URL are never used (their changes are listed as [access]).
Live mode (no revisions: the work tree against the running boxes) is built on the
same core.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.alerts import GROUP_HASH_LABEL, compile_alerts
from reconciler.app.config import load_config
from reconciler.app.state import Tell
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import FleetDiff, diff_live, diff_repos
from reconciler.errors import Refused
from reconciler.model.live import BoxState, LiveBox
from reconciler.repo import GitError, read_revision
from reconciler.secretstore import desired_fingerprints, fleet_key
from reconciler.transport.base import TransportError
from reconciler.transport.link import FleetLink, former_agents
from reconciler.transport.promrules import LoadedAlert, loaded_alerts


@dataclass(frozen=True, slots=True)
class DiffRequest:
    """Live mode without `base`; pull-request mode with it (`head` default HEAD)."""

    repo: Path
    base: str | None = None
    head: str | None = None
    costs: Path | None = None  # JSON {agent: USD per day now}, for cost estimates


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


async def _read_live(loaded: Repo, root: Path) -> list[LiveBox]:
    agents = [ea.agent for ea in loaded.agents.values()]
    key = fleet_key(loaded.fleet, root)
    async with FleetLink(loaded.fleet.connection, root) as link:
        live = await link.read(agents, loaded.fleet.fleet_id, key)
        former = former_agents(root, live.values(), loaded.agents.keys())
        orphans = await link.orphans(agents, loaded.fleet.fleet_id, former)
    boxes = list(live.values())
    for o in orphans:
        boxes.append(
            LiveBox(o.agent, BoxState.MANAGED, reason=f"orphan at {o.host}:{o.port} {o.stamp_path}")
        )
    return boxes


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


async def diff(req: DiffRequest, tell: Tell) -> DiffResult:
    """The fleet diff of the request's mode (see the module docstring)."""
    if req.base is None:
        if req.head is not None:
            raise Refused("--head needs --base: pass both revisions to compare, e.g. --base main")
        loaded = load_config(req.repo)
        root = req.repo.resolve()
        tell(f"reading {len(loaded.agents)} boxes ...")
        boxes = await _read_live(loaded, root)
        fleet_diff = diff_live(
            loaded, boxes, head_label="work tree",
            desired_secrets=desired_fingerprints(loaded, root),
            live_alerts=await _live_alerts(loaded, tell),
        )  # fmt: skip
        return DiffResult(fleet_diff, tuple(b for b in boxes if b.state is BoxState.UNKNOWN))
    cost_now = _costs(req.costs) if req.costs is not None else None
    base_repo, base_label = load_revision(req.repo, req.base, "base")
    head_repo, head_label = load_revision(req.repo, req.head or "HEAD", "head")
    return DiffResult(
        diff_repos(
            base_repo,
            head_repo,
            base_label=base_label,
            head_label=head_label,
            cost_per_day=cost_now,
        )
    )
