"""Validate: every error of the config repo, or the loaded repo when there is none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.app.config import label_prefix
from reconciler.config.errors import ConfigError, ConfigErrors
from reconciler.config.repo import Repo, load_repo
from reconciler.errors import Refused
from reconciler.repo import read_work_tree


@dataclass(frozen=True, slots=True)
class ValidateRequest:
    """The repo to check (its work tree)."""

    repo: Path


@dataclass(frozen=True, slots=True)
class ValidateResult:
    """The loaded repo (None when invalid) and every error found, in file order."""

    repo: Repo | None
    errors: tuple[ConfigError, ...] = ()


def validate(req: ValidateRequest) -> ValidateResult:
    """Load the repo collecting every error; Refused when there is no fleet.yaml at all."""
    if not (req.repo / "fleet.yaml").is_file():
        raise Refused(f"{req.repo}: no fleet.yaml here; pass --repo DIR")
    try:
        return ValidateResult(load_repo(read_work_tree(req.repo), label_prefix(req.repo)))
    except ConfigErrors as exc:
        return ValidateResult(None, tuple(exc.errors))
