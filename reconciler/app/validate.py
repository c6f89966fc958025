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
    """The repo to check (its work tree); `prefix` names its files (default: from the cwd)."""

    repo: Path
    prefix: str | None = None


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
        prefix = label_prefix(req.repo) if req.prefix is None else req.prefix
        return ValidateResult(load_repo(read_work_tree(req.repo), prefix))
    except ConfigErrors as exc:
        return ValidateResult(None, tuple(exc.errors))


def git_root_prefix(repo: Path) -> str:
    """The repo's directory relative to its git work tree's root ("" at the root), as a
    pull request names its files; relative to the current directory outside git."""
    here = repo.resolve()
    for top in (here, *here.parents):
        if (top / ".git").exists():
            rel = here.relative_to(top).as_posix()
            return "" if rel == "." else f"{rel}/"
    return label_prefix(repo)
