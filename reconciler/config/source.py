"""What a config repo consists of, and the in-memory snapshot the core reads it from.

The core never opens files itself: it takes a `RepoFiles` (or any path -> bytes
map), so the same code checks a work tree, a git revision or a test's
in-memory repo. Reading them is the edge's job (reconciler/repo/).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Final

# The files a config repo consists of; anything else in the directory is not ours.
PATTERNS: Final = (
    "fleet.yaml",
    "agents/*.yaml",
    "shards/*.yaml",
    "alerts/*.yaml",
    "usage.yaml",
    "secrets/*.yaml",
    "schemas/agent.schema.json",
)


def wanted(rel: str) -> bool:
    """Whether a repo-relative posix path is one of the config repo's files."""
    return any(fnmatchcase(rel, pattern) for pattern in PATTERNS) and rel.count("/") <= 1


class RepoFiles(Mapping[str, bytes]):
    """An immutable snapshot of a config repo: posix path relative to its root -> bytes.

    `origin` says where the files came from (a work tree's directory, or a
    revision and its sha), for messages; `sha` is the commit they were read
    from, if any. Two snapshots are equal when their files are (wherever they
    came from), and a snapshot equals a plain dict of the same files.
    """

    __slots__ = ("_files", "_origin", "_root", "_sha")

    def __init__(
        self,
        files: Mapping[str, bytes],
        origin: str = "",
        sha: str | None = None,
        root: str | None = None,
    ) -> None:
        self._files: Mapping[str, bytes] = MappingProxyType(dict(files))
        self._origin = origin
        self._sha = sha
        self._root = root

    @property
    def root(self) -> str | None:
        """The repo's directory (absolute) when read from disk or git: what may not be
        trusted for anything a pull request could change (known_hosts)."""
        return self._root

    @property
    def origin(self) -> str:
        """Where the files came from, for messages ("" for a snapshot made in memory)."""
        return self._origin

    @property
    def sha(self) -> str | None:
        """The commit the files were read from; None for a work tree or an in-memory repo."""
        return self._sha

    def __getitem__(self, rel: str) -> bytes:
        return self._files[rel]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"RepoFiles({self._origin or 'in memory'}: {len(self._files)} files)"
