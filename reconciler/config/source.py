"""Reading a config repo's files: from a directory (the work tree) into a path -> bytes map.

The core never opens files itself; it takes this map, so the same code reads
a work tree, a git revision (transport/git.py) or a test's in-memory repo.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Final

# The files a config repo consists of; anything else in the directory is not ours.
PATTERNS: Final = (
    "fleet.yaml",
    "agents/*.yaml",
    "shards/*.yaml",
    "alerts/*.yaml",
    "secrets/*.yaml",
    "schemas/agent.schema.json",
)


def wanted(rel: str) -> bool:
    """Whether a repo-relative posix path is one of the config repo's files."""
    return any(fnmatchcase(rel, pattern) for pattern in PATTERNS) and rel.count("/") <= 1


def read_dir(root: Path) -> dict[str, bytes]:
    """Every config file under `root`, keyed by its posix path relative to `root`."""
    files: dict[str, bytes] = {}
    for pattern in PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files
