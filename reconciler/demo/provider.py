"""The demo's model provider: the set of API keys it accepts, with revocation.

A real provider knows which keys it issued and which were revoked; an agent
whose key is not valid there gets 401 on every task. The demo keeps that set
in DIR/provider/valid_keys.json (0600), as SHA-256 digests, never the keys:

    {"version": 1, "valid": ["<sha256 hex>", ...], "revoked": ["<sha256 hex>", ...]}

`reconcile demo up` issues the demo's initial key (layout.write_secrets);
tests and scripts issue and revoke more with `issue(dir, key)` and
`revoke(dir, key)`, or `python -m reconciler.demo.provider issue|revoke DIR`
with the keys on stdin, one a line (never on a command line). Every box's
agent asks a `Provider` (one per DIR and process) whether its key is valid:
the file is re-read when it changes, checked at most every `RECHECK_S` seconds
(at once in the process that wrote it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

PROVIDER_DIR: Final = "provider"
KEYS_FILE: Final = "valid_keys.json"
RECHECK_S: Final = 0.5


class ProviderError(ValueError):
    """The provider's key file is unreadable; the message names the file, never a key."""


def keys_file(demo_dir: Path) -> Path:
    """DIR/provider/valid_keys.json."""
    return demo_dir.resolve() / PROVIDER_DIR / KEYS_FILE


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read(path: Path) -> tuple[set[str], set[str]]:
    """(valid, revoked) digests; a missing file holds none."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return set(), set()
    except (OSError, ValueError):
        raise ProviderError(f"{path} is not the demo provider's key file") from None
    if not isinstance(doc, dict):
        raise ProviderError(f"{path} does not hold a JSON object")
    valid, revoked = doc.get("valid", []), doc.get("revoked", [])
    if not (isinstance(valid, list) and isinstance(revoked, list)):
        raise ProviderError(f"{path}: 'valid' and 'revoked' must be lists")
    return {str(v) for v in valid}, {str(r) for r in revoked}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time across processes (DIR/provider/.lock)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.parent / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update(demo_dir: Path, change: Callable[[set[str], set[str]], None]) -> None:
    path = keys_file(demo_dir)
    with _locked(path):
        valid, revoked = _read(path)
        change(valid, revoked)
        doc = {"version": 1, "valid": sorted(valid), "revoked": sorted(revoked)}
        tmp = path.with_name(f".{KEYS_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)
    if path in _PROVIDERS:
        _PROVIDERS[path].invalidate()  # this process sees the change at once


def issue(demo_dir: Path, *keys: str) -> None:
    """The provider accepts `keys` from now on (a revoked key is valid again)."""

    def add(valid: set[str], revoked: set[str]) -> None:
        for key in keys:
            valid.add(digest(key))
            revoked.discard(digest(key))

    _update(demo_dir, add)


def revoke(demo_dir: Path, *keys: str) -> None:
    """The provider refuses `keys` from now on (every task sending one fails on auth)."""

    def remove(valid: set[str], revoked: set[str]) -> None:
        for key in keys:
            valid.discard(digest(key))
            revoked.add(digest(key))

    _update(demo_dir, remove)


class Provider:
    """The valid-key set of one DIR as this process sees it (cached, re-read on change)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.clock = path, clock
        self._valid: frozenset[str] = frozenset()
        self._seen: tuple[int, int, int] | None = None
        self._checked_at: float | None = None

    def _refresh(self) -> None:
        now = self.clock()
        if self._checked_at is not None and now - self._checked_at < RECHECK_S:
            return
        self._checked_at = now
        try:
            st = self.path.stat()
        except OSError:
            self._valid, self._seen = frozenset(), None
            return
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen != self._seen:
            try:
                valid, _ = _read(self.path)
            except ProviderError:
                valid = set()  # an unreadable key file accepts nothing
            self._valid, self._seen = frozenset(valid), seen

    def invalidate(self) -> None:
        """Check the file at the next question."""
        self._checked_at = None

    def accepts(self, key: str) -> bool:
        """Whether `key` is valid at the provider now."""
        self._refresh()
        return digest(key) in self._valid


_PROVIDERS: dict[Path, Provider] = {}


def provider_of(demo_dir: Path) -> Provider:
    """The process's shared Provider of DIR (one file check per RECHECK_S for all boxes)."""
    path = keys_file(demo_dir)
    found = _PROVIDERS.get(path)
    if found is None:
        found = _PROVIDERS[path] = Provider(path)
    return found


def main(argv: list[str] | None = None) -> int:
    """issue|revoke DIR, the keys on stdin (one a line)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("issue", "revoke"):
        print("usage: python -m reconciler.demo.provider issue|revoke DIR < keys", file=sys.stderr)
        return 2
    keys = [line.strip() for line in sys.stdin if line.strip()]
    if not keys:
        print("no key on stdin", file=sys.stderr)
        return 2
    (issue if args[0] == "issue" else revoke)(Path(args[1]), *keys)
    print(f"{args[0]}d {len(keys)} key(s) at {keys_file(Path(args[1]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
