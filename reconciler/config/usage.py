"""usage.yaml's one rule across files: every tier it prices traffic for exists.

usage.yaml (model/fleet.py `UsageFile`) gives pull-request cost estimates their
traffic per tier when no Prometheus is named (docs/cost.md); a tier there that
no agents/tier-NAME.yaml defines is a typo that would silently leave that
tier without an estimate.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from reconciler.config.errors import ConfigError
from reconciler.config.load import Doc
from reconciler.model.fleet import UsageFile

RULE = "usage.unknown-tier"


def usage_tier_errors(
    usage: UsageFile, doc: Doc, tier_files: Iterable[str], label: Callable[[str], str]
) -> list[ConfigError]:
    """An error for each tier of usage.yaml that has no agents/tier-NAME.yaml."""
    known = sorted(f.removeprefix("agents/tier-").removesuffix(".yaml") for f in tier_files)
    errors = []
    for tier in usage.tiers:
        if tier in known:
            continue
        near = difflib.get_close_matches(tier, known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else f"known tiers: {', '.join(known)}"
        errors.append(
            ConfigError(
                doc.loc.find(("tiers", tier)),
                RULE,
                f"usage.yaml prices traffic for tier {tier!r}, which has no "
                f"agents/tier-{tier}.yaml; {hint}",
            )
        )
    return errors
