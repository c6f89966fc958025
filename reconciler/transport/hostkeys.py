"""Host-key checking against a known_hosts file, done by us so that a refusal names both keys.

asyncssh's own check only says "not trusted". We look the host up ourselves
(OpenSSH semantics: `host` for port 22, `[host]:port` otherwise, by name or
address, hashed entries included, `@revoked` honoured) and compare the key the
box presents with the keys on file, so a refusal can say which key was
presented and which was expected, or that FILE has none. Trust on first use
appends the presented key to the file, and only when the host has no key at
all: a changed key is always refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from reconciler.transport.base import HostKeyError, TransportError


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The key's SHA256 fingerprint, as `ssh-keygen -l` prints it, with its algorithm."""
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


def host_pattern(host: str, port: int) -> str:
    """The known_hosts name of a host: `host` on port 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True, slots=True)
class Expected:
    """What a known_hosts file says of one host."""

    keys: tuple[asyncssh.SSHKey, ...]
    revoked: tuple[asyncssh.SSHKey, ...]

    @property
    def algorithms(self) -> list[str]:
        """The signature algorithms of the expected keys, to ask the server for those."""
        algs: list[str] = []
        for key in self.keys:
            for alg in key.sig_algorithms:
                name = alg.decode() if isinstance(alg, bytes) else str(alg)
                if name not in algs:
                    algs.append(name)
        return algs


@dataclass
class KnownHostsStore:
    """known_hosts files, each parsed once per command; records keys on trust-on-first-use."""

    _parsed: dict[Path, asyncssh.SSHKnownHosts | None] = field(default_factory=dict)

    def _load(self, path: Path) -> asyncssh.SSHKnownHosts | None:
        if path not in self._parsed:
            try:
                data = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                self._parsed[path] = None
            else:
                self._parsed[path] = asyncssh.import_known_hosts(data)
        return self._parsed[path]

    def expected(self, box: str, path: Path, host: str, addr: str, port: int) -> Expected:
        """The keys `path` holds for host (or its address) on port; TransportError if unreadable."""
        try:
            known = self._load(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise TransportError(
                box, "connect", f"cannot read known_hosts {path}: {exc}; fix or replace the file"
            ) from None
        if known is None:
            return Expected((), ())
        keys: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        names = [host_pattern(host, port)]
        if addr and addr != host:
            names.append(host_pattern(addr, port))
        for name in names:
            # Port already folded into the name: asyncssh's match() would otherwise fall
            # back to the bare host for a non-22 port, which OpenSSH never does.
            found = known.match(name, "", None)
            keys.extend(k for k in found[0] if k not in keys)
            revoked.extend(k for k in found[2] if k not in revoked)
        return Expected(tuple(keys), tuple(revoked))

    def record(self, path: Path, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Append the key for host:port to the file (trust on first use)."""
        algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
        line = f"{host_pattern(host, port)} {algorithm} {blob}\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        self._parsed.pop(path, None)


@dataclass
class HostKeyCheck:
    """The verdict on one connection's host key; asyncssh calls `validate` during key exchange."""

    box: str
    host: str
    port: int
    known_hosts: Path
    expected: Expected
    store: KnownHostsStore
    trust_on_first_use: bool = False
    refusal: HostKeyError | None = None
    recorded: bool = False

    def validate(self, addr: str, key: asyncssh.SSHKey) -> bool:
        """True when the presented key is on file (or recorded now, on first use)."""
        if key in self.expected.revoked:
            self.refusal = self._error(key, revoked=True)
            return False
        if key in self.expected.keys:
            return True
        if not self.expected.keys and self.trust_on_first_use:
            try:
                self.store.record(self.known_hosts, self.host, self.port, key)
            except OSError:
                self.refusal = self._error(key)
                return False
            self.recorded = True
            return True
        self.refusal = self._error(key)
        return False

    def _error(self, key: asyncssh.SSHKey, *, revoked: bool = False) -> HostKeyError:
        expected = [fingerprint(k) for k in self.expected.keys]
        if revoked:
            expected = [f"(revoked) {fingerprint(key)}"]
        return HostKeyError(
            self.box,
            host=self.host,
            port=self.port,
            presented=fingerprint(key),
            expected=expected,
            known_hosts=str(self.known_hosts),
            revoked=revoked,
        )

    def generic_refusal(self, reason: str) -> HostKeyError:
        """A refusal for a key we never saw (e.g. an untrusted host certificate)."""
        return HostKeyError(
            self.box,
            host=self.host,
            port=self.port,
            presented=f"(not a plain key: {reason})",
            expected=[fingerprint(k) for k in self.expected.keys],
            known_hosts=str(self.known_hosts),
        )
