"""Paths named in the repo's config: `~` expanded, relative ones against the repo root."""

from __future__ import annotations

from pathlib import Path


def repo_path(root: Path, value: str) -> Path:
    """A path from the repo's config: `~` expanded, relative paths against the repo root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path
