"""A tiny real agent for tests: its own process, a YAML config, health over HTTP, reload on SIGHUP.

The agent (`python realagent.py --config PATH --run-dir DIR --port N`) loads
its config file, serves the health contract as JSON on 127.0.0.1:N (`alive`,
`heartbeat_age_s`, `loaded_sha256` = sha256 of the bytes it last loaded, ...,
plus `reloads` and `pid`), and on SIGHUP reads the file again. A config that
is not a YAML map, or that holds `crash_on_reload: true`, kills it on reload
(exit 3, like a real crash); at start it exits 2 instead. Once it listens it
writes `DIR/agent.pid`; after every reload `DIR/reloads` holds the count.

`RealAgent(run_dir, config, port)` is the test side: `install()` writes the
box's `reload.sh` (SIGHUP, then wait for the count to move or the process to
die: a synchronous reload, as `systemctl reload` is) and `restart.sh` (stop,
start detached, wait for the pid file), `start()` runs restart.sh locally,
`stop()` ends whatever agent the pid file names. Only the standard library and
ruamel.yaml are used, so sshd can run this file by path with `sys.executable`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

VERSION = "realagent/1"
PID_FILE = "agent.pid"
RELOADS_FILE = "reloads"
LOG_FILE = "agent.log"


class BadConfig(Exception):
    """The config cannot be loaded (not YAML, not a map, or the crash marker)."""


def load(path: Path) -> bytes:
    """The config's bytes when they are a YAML map without the crash marker; BadConfig else."""
    data = path.read_bytes()
    try:
        doc = YAML(typ="safe").load(data)
    except YAMLError as exc:
        raise BadConfig(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BadConfig(f"{path}: not a YAML map")
    if doc.get("crash_on_reload") is True:
        raise BadConfig(f"{path}: crash_on_reload is set")
    return data


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class Agent:
    """The running agent's state; the HTTP thread reads it, the main thread changes it."""

    def __init__(self, config: Path, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.started = time.monotonic()
        self.beat = self.started
        self.tasks = 0
        self.reloads = 0
        self.loaded = hashlib.sha256(load(config)).hexdigest()
        self.hup = threading.Event()
        self.stop = threading.Event()

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "alive": True, "heartbeat_age_s": round(now - self.beat, 3),
            "loaded_revision": None, "loaded_sha256": self.loaded, "agent_version": VERSION,
            "tasks_processed": self.tasks, "queue_depth": 0,
            "uptime_s": round(now - self.started, 3), "reloads": self.reloads,
            "pid": os.getpid(),
        }  # fmt: skip

    def reload(self) -> None:
        """Read the config again; a bad one ends the process (exit 3), as a crash would."""
        try:
            data = load(self.config)
        except (BadConfig, OSError) as exc:
            sys.stderr.write(f"realagent: reload failed, crashing: {exc}\n")
            sys.stderr.flush()
            os._exit(3)
        self.loaded = hashlib.sha256(data).hexdigest()
        self.reloads += 1
        _write_atomic(self.run_dir / RELOADS_FILE, f"{self.reloads}\n")

    def loop(self) -> None:
        """Heartbeat and a synthetic task every 0.1 s; handle SIGHUP and SIGTERM between."""
        while not self.stop.is_set():
            if self.hup.is_set():
                self.hup.clear()
                self.reload()
            self.beat = time.monotonic()
            self.tasks += 1
            time.sleep(0.1)


def _handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(agent.health()).encode()
            self.send_response(200 if self.path.startswith("/healthz") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Health


def serve(config: Path, run_dir: Path, port: int) -> int:
    """Run the agent until SIGTERM (0); a bad config at start is exit 2."""
    try:
        agent = Agent(config, run_dir)
    except (BadConfig, OSError) as exc:
        sys.stderr.write(f"realagent: cannot start: {exc}\n")
        return 2
    signal.signal(signal.SIGHUP, lambda *_: agent.hup.set())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(agent))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _write_atomic(run_dir / RELOADS_FILE, "0\n")
    _write_atomic(run_dir / PID_FILE, f"{os.getpid()}\n")
    agent.loop()
    server.shutdown()
    with contextlib.suppress(FileNotFoundError):
        (run_dir / PID_FILE).unlink()
    return 0


# -- the test side -----------------------------------------------------------------------

_ALIVE = """\
alive() {{ kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' /proc/"$1"/status; }}
pidfile={pidfile}
"""

_RELOAD = """\
#!/bin/sh
# reload: SIGHUP the agent, then wait until it counts the reload (exit 0) or dies (exit 1).
{alive}reloads={reloads}
pid=$(cat "$pidfile" 2>/dev/null) || {{ echo "no agent: $pidfile is missing" >&2; exit 1; }}
alive "$pid" || {{ echo "agent pid $pid is not running" >&2; exit 1; }}
before=$(cat "$reloads" 2>/dev/null)
kill -HUP "$pid"
i=0
while [ "$i" -lt 200 ]; do
  alive "$pid" || {{ echo "agent pid $pid died reloading its config" >&2; exit 1; }}
  [ "$(cat "$reloads" 2>/dev/null)" != "$before" ] && exit 0
  sleep 0.05
  i=$((i + 1))
done
echo "agent pid $pid did not finish its reload within 10s" >&2
exit 1
"""

_RESTART = """\
#!/bin/sh
# restart: stop the agent if it runs, start it detached, wait until it listens (pid file).
{alive}pid=$(cat "$pidfile" 2>/dev/null)
if [ -n "$pid" ] && alive "$pid"; then
  kill -TERM "$pid"
  i=0
  while alive "$pid" && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
fi
rm -f "$pidfile"
setsid {start} >>{log} 2>&1 </dev/null &
new=$!
i=0
while [ "$i" -lt 200 ]; do
  [ -s "$pidfile" ] && exit 0
  alive "$new" || {{ echo "agent did not start:" >&2; tail -n 3 {log} >&2; exit 1; }}
  sleep 0.05
  i=$((i + 1))
done
echo "agent did not start within 10s" >&2
exit 1
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RealAgent:
    """One real agent process for a test: its scripts, start, health, stop."""

    def __init__(self, run_dir: Path, config: Path, port: int | None = None) -> None:
        self.run_dir = run_dir.absolute()
        self.config = config.absolute()
        self.port = port or free_port()
        self.reload_script = self.run_dir / "reload.sh"
        self.restart_script = self.run_dir / "restart.sh"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / PID_FILE

    @property
    def log(self) -> Path:
        return self.run_dir / LOG_FILE

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def install(self) -> RealAgent:
        """Write reload.sh and restart.sh into the run dir (the box's commands run them)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        q = shlex.quote
        start = shlex.join(
            [sys.executable, str(Path(__file__).resolve()), "--config", str(self.config),
             "--run-dir", str(self.run_dir), "--port", str(self.port)]
        )  # fmt: skip
        alive = _ALIVE.format(pidfile=q(str(self.pid_file)))
        reload_sh = _RELOAD.format(alive=alive, reloads=q(str(self.run_dir / RELOADS_FILE)))
        restart_sh = _RESTART.format(alive=alive, start=start, log=q(str(self.log)))
        for path, text in ((self.reload_script, reload_sh), (self.restart_script, restart_sh)):
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755)
        return self

    def start(self) -> RealAgent:
        """Start the agent (through restart.sh, as the box would); RuntimeError if it fails."""
        done = subprocess.run(
            ["/bin/sh", str(self.restart_script)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"realagent did not start: {done.stderr.strip()}")
        return self

    def pid(self) -> int | None:
        """The pid the pid file names, or None."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def health(self) -> dict[str, Any]:
        """The agent's health answer (urllib; raises OSError when it does not answer)."""
        import urllib.request  # noqa: PLC0415  # only the test side needs it

        with urllib.request.urlopen(self.health_url, timeout=5) as resp:  # noqa: S310
            doc: dict[str, Any] = json.loads(resp.read())
            return doc

    def stop(self) -> None:
        """End the agent the pid file names (TERM, then KILL); nothing when none runs."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                if _zombie(pid):
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def main() -> None:
    """Run the agent (see the module docstring)."""
    ap = argparse.ArgumentParser(description="A tiny real agent for reconciler's tests.")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    sys.exit(serve(a.config, a.run_dir, a.port))


if __name__ == "__main__":
    main()
