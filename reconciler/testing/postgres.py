"""A real, throwaway PostgreSQL server for tests of the shared state backend.

Debian's `postgresql` package (scripts/test installs it) puts its binaries under
/usr/lib/postgresql/VERSION/bin. `initdb` and `postgres` refuse to run as root,
so as root they run as the `postgres` user (`runuser -u postgres --`), on a
temporary data directory it owns, listening on a free loopback port with its unix
socket in that directory. The superuser `reconciler` logs in over TCP with a
password (scram-sha-256), as a team's role would. `fsync=off`: a test server's
data need not survive a power cut (this never applies to a real deployment).

    server = PgServer.start()
    url = server.create_database()      # a fresh, empty database
    ...
    server.stop()                       # stops the server, deletes its files
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg

from reconciler.testing.ports import free_port

ROLE: Final = "reconciler"
PASSWORD: Final = "test-only-" + uuid.uuid4().hex[:12]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (install Debian's `postgresql`), or the server did not start."""


def bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries under /usr/lib/postgresql: "
            "apt-get install postgresql (scripts/test does)"
        )
    return found[-1].parent


@dataclass
class PgServer:
    """One running test server: its port, its files, how to reach it."""

    root: Path
    port: int
    bin: Path
    as_root: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [*(("runuser", "-u", "postgres", "--") if self.as_root else ()), *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    @classmethod
    def start(cls) -> PgServer:
        """initdb a temp data dir and start postgres on a free loopback port.

        Raises:
            PostgresUnavailable: no binaries, or initdb/postgres failed (their output said).
        """
        as_root = os.geteuid() == 0
        root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        server = cls(root=root, port=free_port(), bin=bin_dir(), as_root=as_root)
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _init_and_start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        done = self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", ROLE,
            f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
            "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        done = self._run(
            str(self.bin / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-800:]
            raise PostgresUnavailable(f"postgres did not start: {done.stderr.strip()} {log}")

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """`postgresql://reconciler[:password]@127.0.0.1:PORT/database`."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{ROLE}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named `name`, or a random `t_...`); its URL with the password."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def terminate(self, backend_pid: int) -> bool:
        """Kill one session, as a crashed client or a cut network would end it."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,)).fetchone()
        return bool(row and row[0])

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)
