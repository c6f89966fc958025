"""What a rollout changed, field by field with provenance (file:line), for its HTML report.

The plan knows which fields change per box but not where they are set; the fleet diff
(reconciler/diff) between the revision each box ran and the rollout's target does.
Both revisions are read from git objects; a dirty target is read from the work tree.
Only paths, kinds, sources and non-secret values leave here (values cut to 200
characters); anything that cannot be read gives no provenance, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.app.config import load_config
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.diff import diff_repos
from reconciler.errors import ReconcilerError
from reconciler.plan.model import Plan
from reconciler.repo import GitError, read_revision

Provenance = dict[str, list[dict[str, Any]]]


def _value(v: object) -> object:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _load(root: Path, revision: str) -> Repo:
    if "+" in revision:  # sha+dirty-<hash>: the work tree it was made from
        return load_config(root)
    return load_repo(read_revision(root, revision).files)


def provenance(root: Path | None, plan: Plan, target: str) -> Provenance:
    """Agent -> its field changes (path, kind, source, old_source, old, new)."""
    if root is None:
        return {}
    bases = {b.stamp_revision for b in plan.boxes if b.stamp_revision}
    out: Provenance = {}
    try:
        head = _load(root, target)
        for base_rev in sorted(r for r in bases if r):
            base = _load(root, base_rev.split("+", 1)[0])
            fd = diff_repos(base, head, base_label=base_rev[:12], head_label=target[:12])
            wanted = {b.agent for b in plan.boxes if b.stamp_revision == base_rev}
            for a in fd.agents:
                if a.agent in wanted:
                    out[a.agent] = list(_changes(a.changes))
    except (GitError, ConfigErrors, ReconcilerError, OSError, ValueError):
        return out
    return out


def _changes(changes: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for c in changes:
        hidden = bool(getattr(c, "secret", False))
        yield {
            "path": ".".join(str(p) for p in c.path),
            "kind": str(c.kind),
            "source": c.source,
            "old_source": c.old_source,
            "old": None if hidden else _value(c.old),
            "new": None if hidden else _value(c.new),
        }
