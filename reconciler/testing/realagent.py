"""A real agent process for tests: the demo's simulated agent, run as its own process.

The agent (`python realagent.py --config PATH --run-dir DIR --port N [--name NAME]
[--provider-dir D] [--rate R]`) is the demo's `SimAgent` (demo/agent.py) in a
process of its own: it reads its YAML config and the secrets file beside it
(secrets/secretsfile.py: `current`, and `next` once a rotation stages one),
works a synthetic queue driven by its config (demo/workload.py: the model sets
cost and latency, the prompt and max_tokens the tokens, a poisoned prompt makes
tasks fail), and serves on 127.0.0.1:N the health contract as JSON
(`/healthz`: `alive`, `heartbeat_age_s`, `loaded_sha256`, ..., plus `reloads`
and `pid`) and the Prometheus exposition of model/box.py's METRIC_* series
(`/metrics`: tasks_total, task_errors_total{reason=...} from 0, the latency
histogram, tokens, cost, the per-task cost histogram, memory and its limit, queue,
arrivals, the heartbeat's Unix time). With `--provider-dir D` the key it
sends must be valid in D/provider/valid_keys.json (demo/provider.py: issue and
revoke keys there) or every task fails with reason="auth"; without it any key is
accepted.

On SIGHUP it reads config and secrets again. A config it cannot run (not a YAML
map, a bad max_tokens, ...) is refused: it keeps the old one and the reload
fails. A config holding `crash_on_reload: true` kills it on reload (exit 3, like
a real crash); at start either is exit 2. Once it listens it writes
`DIR/agent.pid`; after every reload `DIR/reloads` holds `COUNT ok` or
`COUNT failed: WHY`.

`RealAgent(run_dir, config, port)` is the test side: `install()` writes the
box's `reload.sh` (SIGHUP, then wait for the count to move or the process to
die: a synchronous reload, as `systemctl reload` is), `restart.sh` (stop,
start detached, wait for the pid file) and `agentctl` (`agentctl reload|
restart|health`, the demo boxes' command, for a box whose PATH holds the run
dir), `start()` runs restart.sh locally, `stop()` ends whatever agent the pid
file names. sshd runs this file by path with `sys.executable` (the venv, where
reconciler is installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reconciler.testing.ports import free_port

VERSION = "realagent/2"
PID_FILE = "agent.pid"
RELOADS_FILE = "reloads"
LOG_FILE = "agent.log"
TICK_S = 0.1


class BadConfig(Exception):
    """The config cannot be loaded (not YAML, not a map, or the crash marker)."""


def crash_marked(path: Path) -> bool:
    """Whether the config file holds `crash_on_reload: true` (unreadable: no)."""
    try:
        doc = YAML(typ="safe").load(path.read_bytes())
    except (OSError, YAMLError):
        return False
    return isinstance(doc, dict) and doc.get("crash_on_reload") is True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class Agent:
    """The running agent: a SimAgent, its lock, and the reload count."""

    def __init__(
        self,
        config: Path,
        run_dir: Path,
        *,
        name: str,
        provider_dir: Path | None,
        rate: float,
        seed: int,
    ) -> None:
        # The demo's modules are imported here, not at the top: the test side stays light.
        from reconciler.demo.agent import SimAgent  # noqa: PLC0415
        from reconciler.demo.faults import Faults  # noqa: PLC0415
        from reconciler.demo.provider import Provider, provider_of  # noqa: PLC0415
        from reconciler.model.box import BoxPaths  # noqa: PLC0415

        class AnyKey(Provider):
            def accepts(self, key: str) -> bool:
                return True

        provider = provider_of(provider_dir) if provider_dir else AnyKey(run_dir / "none")
        self.run_dir = run_dir
        self.config = config
        self.sim = SimAgent(
            name, Path("/"), BoxPaths.of(str(config.absolute())), Faults(),
            provider=provider, rate=rate, seed=seed,
        )  # fmt: skip
        if crash_marked(config):
            raise BadConfig(f"{config}: crash_on_reload is set")
        started = self.sim.start()
        if started.code != 0:
            raise BadConfig(started.stderr.strip())
        self.reloads = 0
        self.lock = threading.Lock()
        self.hup = threading.Event()
        self.stop = threading.Event()

    def health(self) -> tuple[int, bytes]:
        with self.lock:
            doc = json.loads(self.sim.health_json())
        doc.update(reloads=self.reloads, pid=os.getpid())
        return 200, json.dumps(doc).encode()

    def metrics(self) -> tuple[int, bytes]:
        with self.lock:
            return 200, self.sim.metrics.exposition()

    def reload(self) -> None:
        """Read config and secrets again; the crash marker ends the process (exit 3)."""
        if crash_marked(self.config):
            sys.stderr.write("realagent: reload of a crash_on_reload config, crashing\n")
            sys.stderr.flush()
            os._exit(3)
        with self.lock:
            done = self.sim.reload()
        self.reloads += 1
        status = "ok" if done.code == 0 else f"failed: {done.stderr.strip()}"
        if done.code != 0:
            sys.stderr.write(f"realagent: {status}\n")
        _write_atomic(self.run_dir / RELOADS_FILE, f"{self.reloads} {status}\n")

    def loop(self) -> None:
        """Work every TICK_S (heartbeat, tasks, metrics); handle SIGHUP and SIGTERM between."""
        while not self.stop.is_set():
            if self.hup.is_set():
                self.hup.clear()
                self.reload()
            with self.lock:
                self.sim.tick()
            time.sleep(TICK_S)


def _handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/healthz"):
                status, body, kind = *agent.health(), "application/json"
            elif self.path.startswith("/metrics"):
                status, body, kind = *agent.metrics(), "text/plain; version=0.0.4"
            else:
                status, body, kind = 404, b"{}", "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


def serve(
    config: Path,
    run_dir: Path,
    port: int,
    *,
    name: str = "agent",
    provider_dir: Path | None = None,
    rate: float = 10.0,
    seed: int = 0,
) -> int:
    """Run the agent until SIGTERM (0); a config it cannot run at start is exit 2."""
    try:
        agent = Agent(config, run_dir, name=name, provider_dir=provider_dir, rate=rate, seed=seed)
    except (BadConfig, OSError) as exc:
        sys.stderr.write(f"realagent: cannot start: {exc}\n")
        return 2
    signal.signal(signal.SIGHUP, lambda *_: agent.hup.set())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(agent))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _write_atomic(run_dir / RELOADS_FILE, "0 ok\n")
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
# reload: SIGHUP the agent, then wait until it counts the reload (exit 0, or 1 when it refused
# the config and kept the old one) or dies (exit 1).
{alive}reloads={reloads}
pid=$(cat "$pidfile" 2>/dev/null) || {{ echo "no agent: $pidfile is missing" >&2; exit 1; }}
alive "$pid" || {{ echo "agent pid $pid is not running" >&2; exit 1; }}
before=$(cat "$reloads" 2>/dev/null)
kill -HUP "$pid"
i=0
while [ "$i" -lt 200 ]; do
  alive "$pid" || {{ echo "agent pid $pid died reloading its config" >&2; exit 1; }}
  now=$(cat "$reloads" 2>/dev/null)
  if [ -n "$now" ] && [ "$now" != "$before" ]; then
    case "$now" in
      *" ok") exit 0 ;;
      *) echo "agent pid $pid refused its config: ${{now#* }}" >&2; exit 1 ;;
    esac
  fi
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

_AGENTCTL = """\
#!/bin/sh
# agentctl reload|restart|health: the box's agent control command (as on the demo boxes).
case "$1" in
  reload) exec /bin/sh {reload} ;;
  restart) exec /bin/sh {restart} ;;
  health) exec {python} -c {fetch} {url} ;;
  *) echo "usage: agentctl reload|restart|health" >&2; exit 2 ;;
esac
"""
_FETCH = (
    "import sys, urllib.request as u; "
    "sys.stdout.write(u.urlopen(sys.argv[1], timeout=5).read().decode())"
)


class RealAgent:
    """One real agent process for a test: its scripts, start, health, stop."""

    def __init__(
        self,
        run_dir: Path,
        config: Path,
        port: int | None = None,
        *,
        name: str = "agent",
        provider_dir: Path | None = None,
        rate: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.run_dir = run_dir.absolute()
        self.config = config.absolute()
        self.port = port or free_port()
        self.name = name
        self.provider_dir = provider_dir
        self.rate = rate
        self.seed = seed
        self.reload_script = self.run_dir / "reload.sh"
        self.restart_script = self.run_dir / "restart.sh"
        self.agentctl = self.run_dir / "agentctl"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / PID_FILE

    @property
    def log(self) -> Path:
        return self.run_dir / LOG_FILE

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def install(self) -> RealAgent:
        """Write reload.sh, restart.sh and agentctl into the run dir (the box's commands)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        q = shlex.quote
        argv = [
            sys.executable, str(Path(__file__).resolve()), "--config", str(self.config),
            "--run-dir", str(self.run_dir), "--port", str(self.port), "--name", self.name,
            "--rate", f"{self.rate:g}", "--seed", str(self.seed),
        ]  # fmt: skip
        if self.provider_dir is not None:
            argv += ["--provider-dir", str(self.provider_dir)]
        alive = _ALIVE.format(pidfile=q(str(self.pid_file)))
        reload_sh = _RELOAD.format(alive=alive, reloads=q(str(self.run_dir / RELOADS_FILE)))
        restart_sh = _RESTART.format(alive=alive, start=shlex.join(argv), log=q(str(self.log)))
        agentctl = _AGENTCTL.format(
            reload=q(str(self.reload_script)), restart=q(str(self.restart_script)),
            python=q(sys.executable), fetch=q(_FETCH), url=q(self.health_url),
        )  # fmt: skip
        scripts = (
            (self.reload_script, reload_sh),
            (self.restart_script, restart_sh),
            (self.agentctl, agentctl),
        )
        for path, text in scripts:
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
    ap.add_argument("--name", default="agent")
    ap.add_argument("--provider-dir", type=Path)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    opts = {"name": a.name, "provider_dir": a.provider_dir, "rate": a.rate, "seed": a.seed}
    sys.exit(serve(a.config, a.run_dir, a.port, **opts))


if __name__ == "__main__":
    main()
