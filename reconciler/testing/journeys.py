"""Journeys: the CLI run as an operator runs it, against a fleet started by `reconcile demo up`.

Helpers for tests/journeys/ (and anyone scripting the demo from outside):

- `run` runs `reconcile ...` as a subprocess and returns a `Result` (exit code, stdout,
  stderr, the JSON event lines); `Background` runs one in the background and waits for
  its events as they come (to send it a signal in a given phase).
- `Demo` is one demo fleet: `Demo.start` runs `reconcile demo up`, `stop` runs `demo
  down`. It edits and commits its config repo (DIR/fleet), injects and clears faults
  through each box's `/_demo/` HTTP API, reads the demo's counters, and reads every box's
  truth from outside the product: the files under DIR/boxes/NAME/root, the agent's health
  endpoint (the `health_url` of the shard files), the secrets file's mode, the lease dir.
- `assert_converged`, `assert_untouched` and `incidents` judge the end state.

Nothing here imports the product's own modules: the journeys keep guarding the CLI, the
box contract and the demo's documented layout while the code behind them is restructured.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

import pyrage
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

GIT_IDENTITY: Final = (
    "-c", "user.name=journey operator", "-c", "user.email=operator@localhost",
    "-c", "commit.gpgsign=false",
)  # fmt: skip
DEFAULT_TIMEOUT_S: Final = 120.0
FLEET_ID: Final = "acme-support"
# Commands that take --repo (Demo.reconcile adds it).
_REPO_COMMANDS: Final = frozenset(
    {
        "validate",
        "render",
        "explain",
        "agents",
        "apply",
        "resume",
        "history",
        "diff",
        "status",
        "rotate-secret",
    }
)


class JourneyError(AssertionError):
    """A journey's expectation failed, or its set-up could not be done (with what to do)."""


# -- running reconcile ------------------------------------------------------------------


def reconcile_bin() -> Path:
    """The `reconcile` console script of the running interpreter's environment (.venv/bin)."""
    override = os.environ.get("RECONCILE_BIN")
    exe = Path(override) if override else Path(sys.executable).with_name("reconcile")
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise JourneyError(
            f"the `reconcile` console script is missing ({exe}); run `bash scripts/setup` in "
            "the checkout to install reconciler into .venv, then run the tests with "
            ".venv/bin/pytest"
        )
    return exe


def cli_env() -> dict[str, str]:
    """The environment `reconcile` runs in: wide output, no colour, no inherited RECONCILER_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"})
    return env


def _json_lines(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith("{") and line.rstrip().endswith("}"):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    events.append(doc)
    return events


@dataclass(frozen=True, slots=True)
class Result:
    """A finished `reconcile` run."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        """stdout and stderr together (what an operator reads)."""
        return f"{self.stdout}\n{self.stderr}"

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON objects printed one a line on stdout (`--format json` event lines)."""
        return _json_lines(self.stdout)

    def kinds(self) -> list[str]:
        return [str(e.get("event")) for e in self.events]

    def first(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        """The first event of `kind` whose fields equal `fields`, or None."""
        return next((e for e in self.events if matches(e, kind, fields)), None)

    def describe(self) -> str:
        """The command, its exit code and its whole output, for failure messages."""
        return (
            f"$ reconcile {' '.join(self.args)}\nexit {self.rc} after {self.seconds:.1f}s\n"
            f"--- stdout ---\n{self.stdout.rstrip()}\n--- stderr ---\n{self.stderr.rstrip()}\n"
        )

    def expect(self, rc: int | Collection[int], *words: str) -> Result:
        """Check the exit code and that every word (regex, case-insensitive) is in the output."""
        codes = {rc} if isinstance(rc, int) else set(rc)
        if self.rc not in codes:
            raise JourneyError(f"expected exit {sorted(codes)}, got {self.rc}\n{self.describe()}")
        missing = [w for w in words if not re.search(w, self.output, re.IGNORECASE)]
        if missing:
            raise JourneyError(f"the output does not say {missing}\n{self.describe()}")
        return self

    def refuse(self, *patterns: str) -> Result:
        """Check that no pattern (regex, case-insensitive) is in the output."""
        found = [p for p in patterns if re.search(p, self.output, re.IGNORECASE)]
        if found:
            raise JourneyError(f"the output says {found}, which it must not\n{self.describe()}")
        return self


def matches(event: Mapping[str, Any], kind: str | None, fields: Mapping[str, Any]) -> bool:
    """Whether a JSON event is of `kind` (None: any) and has every one of `fields`."""
    if kind is not None and event.get("event") != kind:
        return False
    return all(event.get(k) == v for k, v in fields.items())


def run(
    *args: str | Path,
    timeout: float = DEFAULT_TIMEOUT_S,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run `reconcile ARGS` to the end; JourneyError with its output when it overruns."""
    argv = tuple(str(a) for a in args)
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(reconcile_bin()), *argv],
        cwd=cwd,
        env=dict(env) if env is not None else cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        partial = Result(argv, -1, stdout, stderr, time.monotonic() - started)
        raise JourneyError(f"timed out after {timeout:g}s\n{partial.describe()}") from None
    return Result(argv, proc.returncode, stdout, stderr, time.monotonic() - started)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


class Background:
    """`reconcile ARGS` running in the background; its stdout is read line by line as it comes.

    `wait_for` blocks until an event line matches (or the process ends: JourneyError);
    `send` delivers a signal to the process itself; `finish` waits for its exit.
    Use it as a context manager: a process still running at the end is killed.
    """

    def __init__(self, *args: str | Path, cwd: Path | None = None) -> None:
        self.args = tuple(str(a) for a in args)
        self.started = time.monotonic()
        self._out: list[str] = []
        self._err: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [str(reconcile_bin()), *self.args],
            cwd=cwd,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.ended: float | None = None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
            threading.Thread(target=self._reap, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _pump(self, stream: io.TextIOBase | None, into: list[str]) -> None:
        if stream is None:
            return
        for line in stream:
            with self._cond:
                into.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _reap(self) -> None:
        self.proc.wait()
        self.ended = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return _json_lines("".join(self._out))

    def snapshot(self) -> Result:
        """What it printed so far (rc -1 while it runs)."""
        with self._cond:
            out, err = "".join(self._out), "".join(self._err)
        rc = self.proc.poll()
        return Result(self.args, -1 if rc is None else rc, out, err, self.elapsed)

    @property
    def elapsed(self) -> float:
        """Seconds it ran (so far, or until it exited)."""
        return (self.ended or time.monotonic()) - self.started

    def wait_for(
        self,
        kind: str | None = None,
        *,
        timeout: float = 60.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The first event of `kind` with `fields` (and `where`), waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        want = f"{kind or 'an event'} {fields or ''}".strip()
        while True:
            for ev in self.events:
                if matches(ev, kind, fields) and (where is None or where(ev)):
                    return ev
            if self.proc.poll() is not None:
                for t in self._readers:
                    t.join(timeout=5)
                for ev in self.events:
                    if matches(ev, kind, fields) and (where is None or where(ev)):
                        return ev
                raise JourneyError(f"reconcile exited before {want}\n{self.snapshot().describe()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise JourneyError(f"no {want} within {timeout:g}s\n{self.snapshot().describe()}")
            with self._cond:
                self._cond.wait(timeout=min(left, 0.2))

    def send(self, sig: signal.Signals) -> None:
        """Deliver `sig` to the reconcile process (not its group: as `kill -SIG PID`)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = DEFAULT_TIMEOUT_S) -> Result:
        """Wait for the process to end; JourneyError (after killing it) when it overruns."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise JourneyError(
                f"still running after {timeout:g}s; killed\n{self.snapshot().describe()}"
            ) from None
        for t in self._readers:
            t.join(timeout=5)
        return self.snapshot()

    def kill(self) -> None:
        if self.proc.poll() is None:
            _kill_group(self.proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextlib.contextmanager
def explained(*parts: str) -> Iterator[None]:
    """Failures inside the block carry `parts` too (outputs, the case), each shown once."""
    try:
        yield
    except AssertionError as exc:
        message = str(exc)
        extra = [p for p in parts if p.strip() and p.strip() not in message]
        raise JourneyError("\n".join([message, *extra])) from None


def wait_until(
    check: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "a condition"
) -> Any:
    """Poll `check` until it returns something truthy (returned); JourneyError on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise JourneyError(f"{what}: not true within {timeout:g}s (last: {last!r})")
        time.sleep(interval)


# -- one box's truth, read from outside ------------------------------------------------------


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class BoxFiles:
    """The local files behind one box's reconciler files (box contract: beside config_path)."""

    config: Path
    secrets: Path

    @property
    def stamp(self) -> Path:
        return self.config.with_name(f"{self.config.name}.stamp.json")

    @property
    def history(self) -> Path:
        return self.config.with_name(f"{self.config.name}.history")

    @property
    def lease(self) -> Path:
        return self.config.with_name(f"{self.config.name}.lease")


@dataclass(frozen=True, slots=True)
class BoxTruth:
    """What one box really holds and runs, read from its files and its health endpoint."""

    agent: str
    file_sha: str | None
    stamp_raw: bytes | None
    stamp: dict[str, Any] | None
    health: dict[str, Any] | None
    health_error: str | None
    secrets: dict[str, Any] | None
    secrets_mode: int | None
    lease: bool
    history_files: tuple[str, ...]

    @property
    def loaded_sha(self) -> str | None:
        return None if self.health is None else self.health.get("loaded_sha256")

    @property
    def alive(self) -> bool:
        return self.health is not None and self.health.get("alive") is True

    @property
    def revision(self) -> str | None:
        return None if self.stamp is None else self.stamp.get("revision")

    @property
    def history(self) -> list[dict[str, Any]]:
        entries = (self.stamp or {}).get("history")
        return entries if isinstance(entries, list) else []

    def problems(self) -> list[str]:
        """Every way the box is not consistent: file == stamp == loaded, alive, 0600, no lease."""
        bad = []
        stamp = self.stamp or {}
        if self.file_sha is None:
            bad.append("no config file")
        if self.stamp is None:
            bad.append("no readable stamp" if self.stamp_raw is None else "stamp is not JSON")
        elif stamp.get("config_sha256") != self.file_sha:
            bad.append(
                f"stamp sha {_short(stamp.get('config_sha256'))} != file {_short(self.file_sha)}"
            )
        if self.health is None:
            bad.append(f"health unreadable: {self.health_error}")
        else:
            if not self.alive:
                bad.append(f"agent not alive ({self.health.get('reason', 'no reason given')})")
            if self.loaded_sha != self.file_sha:
                bad.append(f"loaded {_short(self.loaded_sha)} != file {_short(self.file_sha)}")
        if self.stamp is not None:
            if stamp.get("agent") != self.agent:
                bad.append(f"stamp names agent {stamp.get('agent')!r}")
            if stamp.get("fleet_id") != FLEET_ID:
                bad.append(f"stamp names fleet {stamp.get('fleet_id')!r}")
            hist = self.history
            if not hist:
                bad.append("stamp history empty")
            elif any(hist[0].get(k) != stamp.get(k) for k in _DESCRIBES):
                bad.append(f"stamp history[0] {hist[0]} does not describe the stamp")
            if self.file_sha is not None and self.file_sha not in self.history_files:
                bad.append(f"history dir lacks the current config {_short(self.file_sha)}")
        if self.secrets is None:
            bad.append("no secrets file")
        elif self.secrets_mode != 0o600:
            bad.append(f"secrets file mode {oct(self.secrets_mode or 0)} (want 0o600)")
        if self.lease:
            bad.append("lease dir left behind")
        return bad

    def line(self) -> str:
        """One line for failure messages."""
        stamp = self.stamp or {}
        return (
            f"{self.agent}: file {_short(self.file_sha)} "
            f"stamp {_short(stamp.get('config_sha256'))} "
            f"loaded {_short(self.loaded_sha)} alive {self.alive} rev {_short(self.revision)} "
            f"outcome {stamp.get('outcome')} blocked {_short(stamp.get('blocked_revision'))} "
            f"lease {self.lease} secrets {oct(self.secrets_mode or 0)}"
        )


_DESCRIBES: Final = ("revision", "config_sha256", "outcome", "rollout_id")


def _short(sha: object) -> str:
    return str(sha)[:12] if sha else str(sha)


def describe(truths: Mapping[str, BoxTruth]) -> str:
    return "\n".join(t.line() for _, t in sorted(truths.items()))


# -- a demo fleet ------------------------------------------------------------------------------


def _http_json(
    url: str, *, method: str = "GET", body: Any = None, timeout: float = 5.0, token: str = ""
) -> Any:
    """GET or POST JSON; 4xx/5xx answers with a JSON body are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    req = urllib.request.Request(  # noqa: S310 (loopback http only: checked by the caller)
        url, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, {"error": raw.decode(errors="replace")}


# Parsed demo files by their content's sha256: a 1,000-box fleet's truths() parsed the
# whole run/*.json and shards/*.yaml once per box (minutes); each content is parsed once.
_PARSED: dict[str, dict[str, Any]] = {}


def _loopback(url: str) -> str:
    if not re.match(r"^http://127\.0\.0\.1:\d+/", url):
        raise JourneyError(f"a demo URL off loopback: {url}")
    return url


@dataclass
class Demo:
    """A demo fleet in `dir`, started by `reconcile demo up` (stop it with `stop`)."""

    dir: Path
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, dir: Path, agents: int, *, rate: float | None = None) -> Demo:
        """`reconcile demo up --dir DIR -n AGENTS` (in the background, as an operator would)."""
        args: list[str | Path] = ["demo", "up", "--dir", dir, "-n", str(agents)]
        if rate is not None:
            args += ["--rate", f"{rate:g}"]
        run(*args, timeout=120).expect(0)
        demo = cls(dir)
        demo.reload_info()
        return demo

    def stop(self) -> Result:
        """`reconcile demo down --dir DIR`: every worker stopped, every port closed (exit 0)."""
        return run("demo", "down", "--dir", self.dir, timeout=60).expect(0)

    def reload_info(self) -> None:
        self.info = json.loads((self.dir / "demo.json").read_text(encoding="utf-8"))

    # -- what it is made of -------------------------------------------------------------

    @property
    def repo(self) -> Path:
        return self.dir / "fleet"

    @property
    def agents(self) -> list[str]:
        return sorted(self.info["agents"])

    def tier(self, tier: str) -> list[str]:
        """The agents of one tier, sorted."""
        return sorted(n for n, a in self.info["agents"].items() if a["tier"] == tier)

    @property
    def first_commit(self) -> str:
        """The commit the boxes were seeded with."""
        return str(self.info["first_commit"])

    @property
    def head_commit(self) -> str:
        """The demo repo's head as `up` wrote it (tier fast: upgrade model)."""
        return str(self.info["head_commit"])

    def _specs(self) -> dict[str, dict[str, Any]]:
        texts = tuple(p.read_bytes() for p in sorted((self.dir / "run").glob("worker-*.json")))
        key = hashlib.sha256(b"\0".join(texts)).hexdigest()
        if key not in _PARSED:  # parsed once per content: truths() asks for every box
            specs = {}
            for text in texts:
                for box in json.loads(text)["boxes"]:
                    specs[box["spec"]["name"]] = box["spec"]
            _PARSED[key] = specs
        return _PARSED[key]

    def files(self, agent: str) -> BoxFiles:
        """Where the box keeps its config, stamp, secrets, history and lease (local paths)."""
        spec = self._specs()[agent]
        root = Path(spec["root"])
        config = PurePosixPath(spec["config_path"])
        secrets = PurePosixPath(
            spec.get("secrets_path") or config.with_name(f"{config.stem}.secrets.json")
        )
        return BoxFiles(root / config.relative_to("/"), root / secrets.relative_to("/"))

    def health_url(self, agent: str) -> str:
        """The agent's `health_url` as its shard file in the repo's work tree sets it."""
        texts = tuple(p.read_bytes() for p in sorted((self.repo / "shards").glob("*.yaml")))
        key = "shards:" + hashlib.sha256(b"\0".join(texts)).hexdigest()
        if key not in _PARSED:  # parsed once per content: truths() asks for every box
            y = YAML(typ="safe")
            urls: dict[str, Any] = {}
            for text in texts:
                doc = y.load(text.decode("utf-8")) or {}
                for entry in doc.get("agents") or []:
                    if entry.get("health_url") and entry.get("name") not in urls:
                        urls[str(entry.get("name"))] = _loopback(str(entry["health_url"]))
            _PARSED[key] = urls
        url = _PARSED[key].get(agent)
        if url is None:
            raise JourneyError(f"no health_url for {agent} in {self.repo / 'shards'}")
        return str(url)

    def _token(self) -> str:
        """The demo's control token (DIR/control.token), for its POSTs."""
        return (self.dir / "control.token").read_text(encoding="utf-8").strip()

    def _demo_url(self, agent: str, what: str) -> str:
        port = self.info["agents"][agent]["http_port"]
        return f"http://127.0.0.1:{port}/_demo/{what}"

    # -- the boxes, from outside --------------------------------------------------------

    def health(self, agent: str) -> dict[str, Any]:
        """The agent's health answer (200, or 503 with `alive: false` while it is down)."""
        _, doc = _http_json(self.health_url(agent))
        if not isinstance(doc, dict):
            raise JourneyError(f"{agent}: health answered {doc!r}")
        return doc

    def counters(self, agent: str) -> dict[str, int]:
        """The demo's counters of one box (/_demo/counters): reloads, config_file_bytes, ..."""
        status, doc = _http_json(self._demo_url(agent, "counters"))
        if status != 200:
            raise JourneyError(f"{agent}: /_demo/counters answered {status}: {doc}")
        return dict(doc)

    def all_counters(self) -> dict[str, dict[str, int]]:
        return {a: self.counters(a) for a in self.agents}

    def fault(self, agent: str, kind: str, value: float | None = None) -> dict[str, Any]:
        """Inject a fault into a box (POST /_demo/fault, as `reconcile demo fault` does)."""
        body: dict[str, Any] = {"kind": kind}
        if value is not None:
            body["value"] = value
        status, doc = _http_json(
            self._demo_url(agent, "fault"), method="POST", body=body, token=self._token()
        )
        if status != 200:
            raise JourneyError(
                f"{agent}: the demo box refused fault {kind!r} (HTTP {status}): "
                f"{doc.get('error') if isinstance(doc, dict) else doc}"
            )
        return dict(doc)

    def clear(self, agent: str, kind: str | None = None) -> None:
        """Clear one fault of a box, or all of them."""
        if kind is None:
            status, doc = _http_json(
                self._demo_url(agent, "clear"), method="POST", body={}, token=self._token()
            )
        else:
            body = {"kind": kind, "clear": True}
            status, doc = _http_json(
                self._demo_url(agent, "fault"), method="POST", body=body, token=self._token()
            )
        if status != 200:
            raise JourneyError(f"{agent}: clearing fault {kind or 'all'} failed: {doc}")

    def clear_all(self) -> None:
        for agent in self.agents:
            self.clear(agent)

    def truth(self, agent: str) -> BoxTruth:
        """Everything one box holds and runs."""
        f = self.files(agent)
        try:
            stamp_raw: bytes | None = f.stamp.read_bytes()
        except FileNotFoundError:
            stamp_raw = None
        stamp = None
        if stamp_raw is not None:
            with contextlib.suppress(ValueError):
                parsed = json.loads(stamp_raw)
                stamp = parsed if isinstance(parsed, dict) else None
        health, health_error = None, None
        try:
            health = self.health(agent)
        except (OSError, JourneyError) as exc:
            health_error = str(exc)
        try:
            secrets = json.loads(f.secrets.read_bytes())
            mode: int | None = stat.S_IMODE(f.secrets.stat().st_mode)
        except (OSError, ValueError):
            secrets, mode = None, None
        history = tuple(sorted(p.name for p in f.history.iterdir())) if f.history.is_dir() else ()
        return BoxTruth(
            agent=agent,
            file_sha=sha256_file(f.config),
            stamp_raw=stamp_raw,
            stamp=stamp,
            health=health,
            health_error=health_error,
            secrets=secrets if isinstance(secrets, dict) else None,
            secrets_mode=mode,
            lease=f.lease.exists(),
            history_files=history,
        )

    def truths(self, agents: Collection[str] | None = None) -> dict[str, BoxTruth]:
        return {a: self.truth(a) for a in (self.agents if agents is None else sorted(agents))}

    def wait_alive(self, timeout: float = 15.0) -> None:
        """Every agent answers its health endpoint alive (after `up`, or a restart)."""

        def down() -> list[str]:
            return [a for a in self.agents if not self.truth(a).alive]

        wait_until(lambda: not down(), timeout=timeout, what=f"agents alive (down: {down()})")

    # -- the config repo -----------------------------------------------------------------

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *GIT_IDENTITY, *args],
            cwd=self.repo,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise JourneyError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def commit_edit(self, path: str, old: str, new: str, message: str) -> str:
        """Replace `old` by `new` once in a repo file, commit it; the new head sha."""
        file = self.repo / path
        text = file.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise JourneyError(f"{path}: {old!r} occurs {text.count(old)} times, not once")
        file.write_text(text.replace(old, new, 1), encoding="utf-8")
        self.git("commit", "-q", "-am", message)
        return self.head()

    def commit_yaml(self, path: str, change: Callable[[Any], None], message: str) -> str:
        """Edit a repo YAML file round-trip (comments kept), commit it; the new head sha."""
        y = YAML()
        y.preserve_quotes = True
        y.width = 4096
        y.indent(mapping=2, sequence=4, offset=2)
        file = self.repo / path
        doc = y.load(file.read_text(encoding="utf-8"))
        change(doc)
        buf = io.StringIO()
        y.dump(doc, buf)
        file.write_text(buf.getvalue(), encoding="utf-8")
        self.git("commit", "-q", "-am", message)
        return self.head()

    def commit_tier_config(self, tier: str, key: str, value: Any, message: str = "") -> str:
        """Set `config.KEY` of agents/tier-TIER.yaml and commit: a change to that tier's agents."""

        def change(doc: Any) -> None:
            multiline = isinstance(value, str) and "\n" in value
            doc["config"][key] = LiteralScalarString(value) if multiline else value

        return self.commit_yaml(
            f"agents/tier-{tier}.yaml", change, message or f"tier {tier}: {key} {value}"
        )

    def revert_head(self) -> str:
        """`git revert --no-edit HEAD`; the new head sha."""
        self.git("revert", "--no-edit", "HEAD")
        return self.head()

    # -- secrets (age-encrypted in the repo, the identity in DIR) ---------------------------

    def secret(self, name: str) -> str:
        """The value in the repo's secrets/NAME.age, decrypted with DIR/age.key (by pyrage,
        not the product)."""
        lines = (self.dir / "age.key").read_text(encoding="utf-8").splitlines()
        keys = [pyrage.x25519.Identity.from_str(k) for k in lines if k.startswith("AGE-")]
        data = (self.repo / "secrets" / f"{name}.age").read_bytes()
        return bytes(pyrage.decrypt(data, keys)).decode("utf-8")

    def set_secret(self, name: str, value: str, *, issued: bool = True) -> None:
        """Change a secret's value in the demo's backend with `reconcile secrets set`: the
        repo's secrets/NAME.age in the work tree, not committed. `issued`: the demo provider
        accepts it (demo/provider.py)."""
        path = self.dir / f".new-{name}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
        try:
            run("secrets", "set", name, "--value-file", path, "--repo", self.repo).expect(0)
        finally:
            path.unlink()
        if issued:
            self.issue_key(value)

    def issue_key(self, value: str) -> None:
        """The demo provider accepts `value` from now on (the key travels on stdin)."""
        subprocess.run(
            [sys.executable, "-m", "reconciler.demo.provider", "issue", str(self.dir)],
            input=value + "\n", text=True, check=True, timeout=30,
        )  # fmt: skip

    # -- running reconcile against it -----------------------------------------------------

    def reconcile(
        self, command: str, *args: str | Path, timeout: float = DEFAULT_TIMEOUT_S
    ) -> Result:
        """`reconcile COMMAND --repo DIR/fleet ARGS` (demo subcommands get --dir themselves)."""
        repo: list[str | Path] = ["--repo", self.repo] if command in _REPO_COMMANDS else []
        return run(command, *repo, *args, timeout=timeout)

    def background(self, command: str, *args: str | Path) -> Background:
        repo: list[str | Path] = ["--repo", self.repo] if command in _REPO_COMMANDS else []
        return Background(command, *repo, *args)


@contextlib.contextmanager
def demo_fleet(dir: Path, agents: int, *, rate: float | None = None) -> Iterator[Demo]:
    """A demo fleet for the block; always `demo down` after (and on a failed start)."""
    try:
        demo = Demo.start(dir, agents, rate=rate)
    except BaseException:
        if (dir / "demo.json").exists():
            with contextlib.suppress(JourneyError):
                run("demo", "down", "--dir", dir, timeout=60)
        raise
    try:
        yield demo
    finally:
        demo.stop()


# -- judging the end state --------------------------------------------------------------------


def assert_converged(
    demo: Demo,
    revision: str | Mapping[str, str],
    *,
    agents: Collection[str] | None = None,
    others: str | None = None,
    outcome: str | None = None,
    content: Mapping[str, BoxTruth] | None = None,
) -> dict[str, BoxTruth]:
    """Every box consistent and on its expected revision; the truths read, for more checks.

    Consistent: config file sha256 == stamp config_sha256 == the agent's loaded_sha256,
    agent alive, stamp names this agent and fleet, its history's newest entry describes it,
    the current config kept in the history dir, secrets file present with mode 0600, no
    lease dir left. Revision: `revision` for the boxes in `agents` (default: all) and
    `others` (when given) for the rest; or, `revision` being a map, each box's own.
    `outcome` (applied | rolled-back) is checked on the `agents` boxes; `content` (earlier
    truths) says that each box holds byte for byte the config it held then.
    """
    truths = demo.truths()
    problems = []
    for name, t in sorted(truths.items()):
        bad = t.problems()
        on = agents is None or name in agents
        want = revision.get(name) if isinstance(revision, Mapping) else (revision if on else others)
        if want is not None and t.revision != want:
            bad.append(f"stamp revision {_short(t.revision)} != {_short(want)}")
        if on and outcome is not None and (t.stamp or {}).get("outcome") != outcome:
            bad.append(f"stamp outcome {(t.stamp or {}).get('outcome')!r} != {outcome!r}")
        if content is not None and name in content and content[name].file_sha != t.file_sha:
            bad.append(
                f"config {_short(t.file_sha)}, not {_short(content[name].file_sha)} as before"
            )
        problems += [f"{name}: {b}" for b in bad]
    if problems:
        raise JourneyError(
            "the fleet did not converge:\n  " + "\n  ".join(problems)
            + "\nevery box:\n" + describe(truths)
        )  # fmt: skip
    return truths


def revisions(truths: Mapping[str, BoxTruth]) -> dict[str, str]:
    """Each box's stamp revision (boxes without a readable stamp left out)."""
    return {n: t.revision for n, t in truths.items() if t.revision is not None}


def assert_untouched(
    before: Mapping[str, BoxTruth], after: Mapping[str, BoxTruth], agents: Collection[str]
) -> None:
    """The boxes' config files, stamps and secrets files are byte for byte as before; no lease."""
    problems = []
    for name in sorted(agents):
        b, a = before[name], after[name]
        if a.file_sha != b.file_sha:
            problems.append(f"{name}: config file {_short(b.file_sha)} -> {_short(a.file_sha)}")
        if a.stamp_raw != b.stamp_raw:
            problems.append(
                f"{name}: stamp rewritten ({_short(b.revision)} -> {_short(a.revision)})"
            )
        if a.secrets != b.secrets:
            problems.append(f"{name}: secrets file rewritten")
        if a.lease:
            problems.append(f"{name}: lease dir left behind")
    if problems:
        raise JourneyError("boxes that must be untouched changed:\n  " + "\n  ".join(problems))


def blocked(truths: Mapping[str, BoxTruth]) -> dict[str, str | None]:
    """Each box's stamp `blocked_revision`."""
    return {n: (t.stamp or {}).get("blocked_revision") for n, t in truths.items()}


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident report: STATE_DIR/incidents/<rollout-id>.{md,json}."""

    rollout_id: str
    markdown: str
    doc: dict[str, Any]

    @property
    def text(self) -> str:
        """Markdown and JSON together, for searching."""
        return f"{self.markdown}\n{json.dumps(self.doc)}"


def incidents(state_dir: Path) -> list[Incident]:
    """Every incident report in the state dir, oldest first (by file time)."""
    folder = state_dir / "incidents"
    if not folder.is_dir():
        return []
    found = []
    for js in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        md = js.with_suffix(".md")
        found.append(
            Incident(
                js.stem,
                md.read_text(encoding="utf-8") if md.exists() else "",
                json.loads(js.read_text(encoding="utf-8")),
            )
        )
    strays = sorted(p.name for p in folder.glob("*.md") if not p.with_suffix(".json").exists())
    if strays:
        raise JourneyError(f"incident reports without their JSON twin: {strays}")
    return found


class FleetPool:
    """The demo fleets of one test module: one runs at a time, reused while it stays healthy.

    `get(rate)` returns the running fleet when it has that task rate, was not discarded
    (a test that failed on it calls `discard`) and is healthy: faults cleared, every box
    consistent (`BoxTruth.problems`), the repo's head not blocked on any box. Otherwise
    it stops it and starts a fresh one, so a failing case never poisons the next.
    """

    def __init__(self, root: Path, agents: int) -> None:
        self.root, self.agents = root, agents
        self.started = 0
        self._demo: Demo | None = None
        self._rate: float | None = None
        self._dirty = False

    def get(self, rate: float | None = None) -> Demo:
        if self._demo is not None and (self._dirty or rate != self._rate or not self._healthy()):
            self._stop()
        if self._demo is None:
            self.started += 1
            self._demo = Demo.start(self.root / f"fleet-{self.started}", self.agents, rate=rate)
            self._rate, self._dirty = rate, False
            self._demo.wait_alive()
        return self._demo

    def discard(self) -> None:
        """The current fleet is not to be reused (its test failed)."""
        self._dirty = True

    def _healthy(self) -> bool:
        demo = self._demo
        if demo is None:
            return False
        try:
            demo.clear_all()
            truths = demo.truths()
            head = demo.head()
            clean = demo.git("status", "--porcelain") == ""
        except (JourneyError, OSError):
            return False
        consistent = all(not t.problems() for t in truths.values())
        return clean and consistent and head not in blocked(truths).values()

    def _stop(self) -> None:
        demo, self._demo = self._demo, None
        if demo is not None:
            demo.stop()

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> FleetPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
