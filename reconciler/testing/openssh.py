"""A real OpenSSH box on loopback: sshd started by a test (as root) with its own keys and config.

`OpenSshBox(workdir).start()` generates a host key and a client key
(ssh-keygen), writes an sshd_config that trusts only that client key
(`AuthorizedKeysFile` in workdir, no passwords, no PAM, `internal-sftp`),
writes a known_hosts line for the port it got, and runs `sshd -D -e -f CONFIG`
on 127.0.0.1 at a free port (probing, and retrying when the port was taken in
between). Files written over SFTP land at absolute paths on this machine, so
`box.root` is a directory under workdir for tests to use. `client_key` names a key
to trust instead (a fleet of boxes sharing one, generated when missing);
`path_prepend` puts a directory first on the PATH of the commands sshd runs
(`SetEnv`), where a box keeps its own `agentctl`.

Clean login environment (default): root's shell startup files on these
machines run a Python version manager's init that costs ~100 ms per remote
command. sshd is started inside a private mount namespace where an empty file
is bind-mounted over each startup file (~/.bashrc, ~/.profile, /etc/bash.bashrc,
...), so commands run as on a lean server; the host's files are untouched.

`python -m reconciler.testing.openssh --measure` prints the per-command latency
with and without the clean environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from reconciler.testing.ports import free_port
from reconciler.transport.ssh import SshOptions, SshPool, SshTarget

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # sshd's, for root
STARTUP_FILES = (
    "~/.bashrc", "~/.profile", "~/.bash_profile", "~/.bash_login", "~/.bash_logout",
    "~/.ssh/rc", "/etc/bash.bashrc", "/etc/profile", "/etc/ssh/sshrc",
)  # fmt: skip


class OpenSshUnavailable(RuntimeError):
    """sshd cannot be started here (not root, not installed, or it failed to listen)."""


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


class OpenSshBox:
    """One sshd on 127.0.0.1 for the life of a test (or a bench): start(), stop(), target()."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        clean_env: bool = True,
        max_startups: int = 200,
        start_timeout: float = 10.0,
        client_key: Path | None = None,
        path_prepend: Path | None = None,
    ) -> None:
        self.workdir = workdir.absolute()
        self.clean_env = clean_env
        self.max_startups = max_startups
        self.start_timeout = start_timeout
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self.root = self.workdir / "box"
        self.client_key = (client_key or self.workdir / "client_ed25519").absolute()
        self.path_prepend = path_prepend
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.known_hosts = self.workdir / "known_hosts"
        self.config = self.workdir / "sshd_config"
        self.log = self.workdir / "sshd.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def why_unavailable() -> str | None:
        """Why sshd cannot run here, or None when it can."""
        if os.geteuid() != 0:
            return "the OpenSSH fixture runs sshd as root; run the tests as root"
        if not SSHD.exists():
            return f"{SSHD} is missing; run scripts/test (it installs openssh-server)"
        for tool in ("ssh-keygen", "unshare", "mount"):
            if shutil.which(tool) is None:
                return f"{tool} is not on PATH"
        return None

    @property
    def host_public_key(self) -> str:
        return Path(f"{self.host_key}.pub").read_text().split()[1]

    def target(self, name: str = "openssh-box") -> SshTarget:
        """How the transport reaches this box."""
        return SshTarget(name, self.host, self.port, self.user, self.client_key, self.known_hosts)

    def start(self) -> OpenSshBox:
        """Keys, config, then sshd on a free port; OpenSshUnavailable when it cannot listen."""
        if (why := self.why_unavailable()) is not None:
            raise OpenSshUnavailable(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        if not self.host_key.exists():
            _keygen(self.host_key, "reconciler-test-host")
        if not self.client_key.exists():
            _keygen(self.client_key, "reconciler-test-client")
        (self.workdir / "authorized_keys").write_bytes(Path(f"{self.client_key}.pub").read_bytes())
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        last = ""
        for _ in range(5):
            self.port = free_port()
            self._write_config()
            self._spawn()
            if self._wait_listening():
                alg = Path(f"{self.host_key}.pub").read_text().split()[0]
                self.known_hosts.write_text(
                    f"[{self.host}]:{self.port} {alg} {self.host_public_key}\n"
                )
                return self
            last = self._stop_proc()
            if "Address already in use" not in last:
                break
        raise OpenSshUnavailable(f"sshd did not start on {self.host}:{self.port}: {last.strip()}")

    def stop(self) -> None:
        """Stop sshd (and with it every session it serves)."""
        self._stop_proc()

    def __enter__(self) -> OpenSshBox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_config(self) -> None:
        self.config.write_text(
            f"""\
Port {self.port}
ListenAddress {self.host}
HostKey {self.host_key}
PidFile {self.workdir / "sshd.pid"}
AuthorizedKeysFile {self.workdir / "authorized_keys"}
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
PermitUserEnvironment no
MaxStartups {self.max_startups}
MaxSessions 64
LogLevel ERROR
Subsystem sftp internal-sftp
{self._set_env()}"""
        )

    def _set_env(self) -> str:
        """`SetEnv PATH=...` with `path_prepend` first (a box's own commands), or nothing."""
        if self.path_prepend is None:
            return ""
        return f"SetEnv PATH={self.path_prepend}:{DEFAULT_PATH}\n"

    def _spawn(self) -> None:
        sshd = [str(SSHD), "-D", "-e", "-f", str(self.config)]
        log = self.log.open("ab")
        if self.clean_env:
            empty = self.workdir / "empty"
            empty.write_bytes(b"")
            binds = [
                f"mount --bind {shlex.quote(str(empty))} {shlex.quote(str(p))}"
                for f in STARTUP_FILES
                if (p := Path(f).expanduser()).is_file()
            ]
            script = "set -e\n" + "\n".join(binds) + "\nexec " + shlex.join(sshd)
            argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
        else:
            argv = sshd
        with log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as s,
            ):
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-"):
                    return True
            time.sleep(0.02)
        return False

    def _stop_proc(self) -> str:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


async def _per_command_ms(box: OpenSshBox, n: int) -> dict[str, float]:
    async with SshPool(SshOptions()) as pool:
        b = pool.box(box.target())
        await b.run(["true"], timeout=10)  # connect outside the timing
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            await b.run(["true"], timeout=10)
            times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2)}


def measure(n: int = 30) -> dict[str, object]:
    """Per-command latency of `true` over one connection, with and without the clean env."""
    result: dict[str, object] = {"n": n}
    for clean in (False, True):
        with tempfile.TemporaryDirectory() as d, OpenSshBox(Path(d), clean_env=clean) as box:
            result["clean" if clean else "default"] = asyncio.run(_per_command_ms(box, n))
    return result


def main() -> None:
    """Measure the fixture, or serve one box until Enter."""
    ap = argparse.ArgumentParser(description="A loopback OpenSSH box for tests and benches.")
    ap.add_argument("--measure", action="store_true", help="print per-command latency as JSON")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--dir", type=Path, help="serve a box with this workdir until Enter")
    a = ap.parse_args()
    if a.measure:
        print(json.dumps(measure(a.n)))
        return
    workdir = a.dir or Path(tempfile.mkdtemp(prefix="openssh-box-"))
    with OpenSshBox(workdir) as box:
        print(json.dumps({"port": box.port, **{k: str(v) for k, v in vars(box).items()}}))
        input()


if __name__ == "__main__":
    main()
