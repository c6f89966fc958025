"""The leak canary: secret values searched for in every channel a rotation, a failing rollout
and the error paths write to (issue 14 "Tests", last bullet; issue 13 "Secrets in messages").

One demo fleet (`reconcile demo up`, 4 boxes) serves the whole module, driven by the real
CLI as an operator drives it. Canary values are fresh `sk-demo-...` keys:

- (b) test_1: K2, NOT issued: `secrets set` + commit + `apply --yes` → the gates fail on
  auth errors, rollback, exit 3, incident; then diff (live and PR mode), history, status.
  The head is reverted after it (the boxes' value again).
- (a) test_2: K1, issued at the demo provider: `rotate-secret` to it, stage in `--format
  json`, promote in text, retire in json; then the read commands in their formats.
- (c) test_3: K3, issued, committed as the head, with the error paths: a wrong age identity
  and a non-identity (K3 itself) in RECONCILER_AGE_IDENTITY, an unreachable box
  (`ssh-refused`), a failed reload (`crash-on-reload`, rollback).
  The failing rollout runs before the rotation on purpose: a rollback after a finished
  rotation restores the stamp's history entry of its promote step, and with it the
  "promoted" rotation mark, so every later apply is refused as "a rotation is pending"
  (an engine bug reported to the lead; not a leak).
- in process: the saved traceback of an internal error, and the terminal's scrubbing of a
  value that a narrow terminal wraps across lines.

Every canary — and the demo's original values and the wrong identity — is searched for raw,
base64 (standard and URL-safe, padded or not), hex (lower and upper) and URL-encoded, both
in each haystack and in the haystack with all whitespace removed, in: stdout and stderr of
every command; every file under the state dir (the journal's SQLite file and its -wal/-shm
read as bytes, plus a `sqlite3` dump of it; incident reports md + json; saved tracebacks);
every file under each box's root (stamps, history, lease, configs); the repo's work tree.

Excluded, and only these: each box's secrets file (`config.secrets.json`, checked to be
0600): the values must be there, it is where the agent reads them. Kept copies of an earlier
secrets file exist only while a rollout runs; every scan here runs after the command ended,
so they are NOT excluded: one left behind is a finding. The demo's own files outside the
boxes (DIR/provider's issued-key list, DIR/age.key) are the test's fixtures, not channels.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import secrets
import sqlite3
import stat
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pyrage
import pytest
from rich.console import Console

from reconciler.app.state import save_traceback
from reconciler.cli.redacting import redacted_output
from reconciler.report.status import AgentStatusOut, GroupOut, StatusReport, status_text
from reconciler.secrets.redact import MASK, REDACTOR
from reconciler.status.matrix import Color
from reconciler.testing.journeys import Demo, Result, cli_env, demo_fleet, explained, run

pytestmark = pytest.mark.timeout(240)

SECRET = "anthropic_api_key"
SECRETS_FILE = "config.secrets.json"
FORMATS = ("text", "json", "markdown")


def forms(value: str) -> dict[str, bytes]:
    """The spellings a leaked `value` may take, by name."""
    raw = value.encode()
    b64 = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    hexed = binascii.hexlify(raw).decode()
    spelled = {
        "raw": value,
        "base64": b64,
        "base64 unpadded": b64.rstrip("="),
        "urlsafe base64": url,
        "urlsafe base64 unpadded": url.rstrip("="),
        "hex": hexed,
        "HEX": hexed.upper(),
        "url-encoded": quote(value, safe=""),
        "url-encoded plus": quote_plus(value, safe=""),
    }
    return {k: v.encode() for k, v in spelled.items()}


_WS = re.compile(rb"\s+")


def hits(haystack: bytes, canaries: dict[str, str]) -> list[str]:
    """'canary (form[, whitespace stripped])' for each canary form found in `haystack`."""
    stripped = _WS.sub(b"", haystack)
    found = []
    for label, value in canaries.items():
        for name, spelled in forms(value).items():
            if spelled in haystack:
                found.append(f"{label} ({name})")
            elif spelled in stripped:
                found.append(f"{label} ({name}, across whitespace)")
    return found


def canary() -> str:
    return f"sk-demo-{secrets.token_hex(16)}"


@dataclass
class Leaks:
    """The module's canaries, and every channel searched so far."""

    demo: Demo
    state: Path
    canaries: dict[str, str] = field(default_factory=dict)
    channels: int = 0

    def scan_texts(self, named: Iterable[tuple[str, str | bytes]]) -> list[str]:
        found = []
        for where, text in named:
            self.channels += 1
            data = text.encode() if isinstance(text, str) else text
            found += [f"{where}: {h}" for h in hits(data, self.canaries)]
        return found

    def scan_results(self, results: Sequence[Result]) -> list[str]:
        named: list[tuple[str, str]] = []
        for r in results:
            cmd = "reconcile " + " ".join(r.args)
            named += [(f"stdout of `{cmd}`", r.stdout), (f"stderr of `{cmd}`", r.stderr)]
        return self.scan_texts(named)

    def files(self) -> Iterator[tuple[str, bytes]]:
        """Every file that is a channel: the state dir, the boxes' roots, the repo work tree."""
        for path in sorted(p for p in self.state.rglob("*") if p.is_file()):
            yield str(path), path.read_bytes()
        for db in sorted(self.state.glob("*.sqlite3")):
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                yield f"sqlite3 dump of {db}", "\n".join(conn.iterdump()).encode()
            finally:
                conn.close()
        for agent in self.demo.agents:
            root = self.demo.dir / "boxes" / agent / "root"
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                if path.name == SECRETS_FILE:
                    mode = stat.S_IMODE(path.stat().st_mode)
                    assert mode == 0o600, f"{path}: mode {oct(mode)}, not 0600"
                    continue
                yield str(path), path.read_bytes()
        for path in sorted(self.demo.repo.rglob("*")):
            if path.is_file() and ".git" not in path.relative_to(self.demo.repo).parts:
                yield f"repo work tree {path}", path.read_bytes()

    def assert_clean(self, results: Sequence[Result], context: str) -> None:
        found = self.scan_results(results) + self.scan_texts(self.files())
        where = "\n".join(r.describe() for r in results if r.rc not in (0,))
        assert not found, (
            f"{context}: secret values leaked:\n  "
            + "\n  ".join(found)
            + (f"\n{where}" if where else "")
        )

    # -- running commands ------------------------------------------------------------------

    def cli(self, *args: str | Path, env: dict[str, str] | None = None) -> Result:
        return run(*args, env=env, timeout=120)

    def sweep(self, commands: Sequence[Sequence[str | Path]]) -> list[Result]:
        """Read-only commands, three at a time (they wait on the boxes, not the CPU)."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda c: self.cli(*c), commands))

    def value_file(self, value: str, name: str) -> Path:
        path = self.demo.dir / f"{name}.value"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        return path


@pytest.fixture(scope="module")
def leaks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leaks]:
    root = tmp_path_factory.mktemp("leak")
    with demo_fleet(root / "demo", 4) as demo:
        demo.wait_alive()
        demo.revert_head()  # the boxes run this config: a rotation changes the secret only
        found = Leaks(demo, root / "state")
        found.canaries = {
            f"original {SECRET}": demo.secret(SECRET),
            "original kb_token": demo.secret("kb_token"),
        }
        yield found


def repo(leaks: Leaks, *command: str | Path) -> list[str | Path]:
    """`reconcile COMMAND... --repo DIR/fleet` as an argument list."""
    return [*command, "--repo", leaks.demo.repo]


def each_format(args: list[str | Path], formats: Sequence[str] = FORMATS) -> list[list[str | Path]]:
    return [[*args, "--format", f] for f in formats]


def expect_ok(results: Iterable[Result]) -> None:
    for r in results:
        with explained(r.describe()):
            r.expect(0).refuse("Traceback")


def test_1_a_failing_rollout_of_a_bad_canary_leaks_nowhere(leaks: Leaks) -> None:
    """An unissued canary committed and applied: gates fail, rollback, exit 3; no hit."""
    demo = leaks.demo
    k2 = canary()
    leaks.canaries["K2 (bad key, rolled back)"] = k2
    base = demo.head()
    demo.set_secret(SECRET, k2, issued=False)
    demo.git("commit", "-q", "-am", f"secret {SECRET}: a key the provider never issued")
    state = ["--state-dir", leaks.state]
    before = leaks.sweep(
        each_format(repo(leaks, "diff"))
        + each_format([*repo(leaks, "diff"), "--base", base, "--head", "HEAD"])
        + each_format([*repo(leaks, "apply"), "--dry-run", *state], ("text", "json"))
    )
    expect_ok(before)
    failed = leaks.cli(*repo(leaks, "apply"), "--yes", *state, "--format", "json")
    with explained(failed.describe()):
        failed.expect(3, "rolled.back").refuse("Traceback")
    reports = sorted((leaks.state / "incidents").glob("*.md"))
    assert reports and all(p.with_suffix(".json").is_file() for p in reports), reports
    after = leaks.sweep(
        each_format([*repo(leaks, "history"), *state], ("text", "json"))
        + each_format(repo(leaks, "status"), ("json",))
    )
    for r in after:
        with explained(r.describe()):
            r.refuse("Traceback")
            assert r.rc in (0, 1), r.rc
    leaks.assert_clean([*before, failed, *after], "a failing rollout of K2")
    # the repo back to the value the boxes hold, so the rotation (test_2) starts clean
    demo.revert_head()


def test_2_a_rotation_to_the_canary_leaks_nowhere(leaks: Leaks) -> None:
    """rotate-secret to an issued canary (json, text, json), then reads: no hit anywhere."""
    demo = leaks.demo
    k1 = canary()
    leaks.canaries["K1 (rotated to)"] = k1
    demo.issue_key(k1)
    value = leaks.value_file(k1, "k1")
    rotate = [
        *repo(leaks, "rotate-secret", SECRET),
        "--value-file",
        value,
        "--state-dir",
        leaks.state,
    ]
    results = [leaks.cli(*rotate, "--dry-run", "--until", "stage")]
    for until, fmt in (("stage", "json"), ("promote", "text"), ("retire", "json")):
        results.append(leaks.cli(*rotate, "--yes", "--until", until, "--format", fmt))
    expect_ok(results)
    value.unlink()
    if demo.git("status", "--porcelain"):  # retire re-encrypted the age file: commit it
        demo.git("commit", "-q", "-am", f"secret {SECRET}: rotated")
    # (diff in every format, live and PR mode, runs in test_1, where it has a change to show)
    reads = each_format([*repo(leaks, "rotate-secret", SECRET), "--status"], ("text", "json"))
    reads += each_format(repo(leaks, "diff"), ("json",))
    reads += each_format(repo(leaks, "secrets", "list"), ("text", "json"))
    results += leaks.sweep(reads)
    expect_ok(results)
    for agent in demo.agents:  # the scan finds the value where it must be: the 0600 file
        held = (demo.dir / "boxes" / agent / "root/etc/agent" / SECRETS_FILE).read_bytes()
        assert hits(held, {"K1": k1}), f"{agent}: K1 not in its secrets file"
    leaks.assert_clean(results, "a rotation to K1")


def test_3_error_paths_with_the_canary_resolved_leak_nowhere(leaks: Leaks) -> None:
    """A wrong age identity, a non-identity, an unreachable box, a failed reload: no hit."""
    demo = leaks.demo
    k3 = canary()
    leaks.canaries["K3 (error paths)"] = k3
    demo.set_secret(SECRET, k3, issued=True)
    demo.git("commit", "-q", "-am", f"secret {SECRET}: K3")
    wrong = str(pyrage.x25519.Identity.generate())
    leaks.canaries["a wrong age identity"] = wrong
    state = ["--state-dir", leaks.state]
    results: list[Result] = []

    # a bad backend: an identity that is not a recipient; the canary pasted as the identity
    for identity, fmt in ((wrong, "text"), (k3, "json")):
        env = cli_env() | {"RECONCILER_AGE_IDENTITY": identity}
        bad = [
            leaks.cli(*repo(leaks, "apply"), "--yes", *state, "--format", fmt, env=env),
            leaks.cli(*repo(leaks, "secrets", "list"), "--format", "json", env=env),
            leaks.cli(
                *repo(leaks, "rotate-secret", SECRET),
                "--from-backend",
                "--dry-run",
                *state,
                env=env,
            ),
        ]
        # apply exits 0 here: with no value to fingerprint, secrets are "not checked" and
        # the boxes look up to date (reported to the lead: not a leak, but a silent skip)
        with explained(bad[0].describe()):
            bad[0].expect((0, 1)).refuse("Traceback")
        with explained(bad[1].describe()):
            bad[1].expect(1, "RECONCILER_AGE_IDENTITY").refuse("Traceback")
        # rotate --from-backend says "no new value" and never names the identity (reported)
        with explained(bad[2].describe()):
            bad[2].expect(1).refuse("Traceback")
        results += bad

    # an unreachable box, with K3 resolved to be written
    victim = demo.agents[0]
    demo.fault(victim, "ssh-refused")
    try:
        down = [
            leaks.cli(*repo(leaks, "apply"), "--yes", *state),
            leaks.cli(*repo(leaks, "diff"), "--format", "json"),
        ]
    finally:
        demo.clear(victim)
    for r in down:
        with explained(r.describe()):
            r.expect(1, victim).refuse("Traceback")
    results += down

    # a failed reload: every box's next reload crashes its agent; the rollout rolls back
    for agent in demo.agents:
        demo.fault(agent, "crash-on-reload")
    try:
        crashed = leaks.cli(*repo(leaks, "apply"), "--yes", *state, "--format", "json")
    finally:
        demo.clear_all()
    with explained(crashed.describe()):
        crashed.expect(3).refuse("Traceback")
    results.append(crashed)
    leaks.assert_clean(results, "error paths with K3")


def test_the_search_finds_every_spelling_even_wrapped() -> None:
    """The scanner itself: each form found, also when a line break splits it."""
    value = canary()
    for name, spelled in forms(value).items():
        wrapped = b"x " + spelled[:9] + b"\n    " + spelled[9:] + b" y"
        assert hits(wrapped, {"c": value}), name
    assert hits(b"nothing here", {"c": value}) == []


# -- in process: the sinks that no demo run reaches on purpose --------------------------------


@pytest.fixture
def registered() -> Iterator[str]:
    """A canary registered with the process redactor, as the secret store registers values."""
    value = canary()
    REDACTOR.add([value])
    yield value
    REDACTOR.clear()


def test_a_saved_traceback_holds_no_registered_value(registered: str, tmp_path: Path) -> None:
    """An internal error whose message and frames carry the value: the saved file is clean."""
    raw = registered.encode()
    message = f"boom: {registered!r} {base64.b64encode(raw).decode()} {raw.hex().upper()}"
    text = "".join(traceback.format_exception(RuntimeError(message)))
    saved = Path(save_traceback(tmp_path / "state", "apply", text))
    assert hits(saved.read_bytes(), {"canary": registered}) == []
    assert MASK in saved.read_text(encoding="utf-8")


def partial(text: str, value: str, run: int = 8) -> list[str]:
    """Runs of `run` characters of `value`'s random part that show in `text`."""
    secret = value.removeprefix("sk-demo-")
    flat = "".join(text.split())
    pieces = {secret[i : i + run] for i in range(len(secret) - run + 1)}
    return sorted(p for p in pieces if p in flat)


def test_a_status_reason_a_narrow_terminal_cuts_shows_no_part_of_a_value(
    registered: str,
) -> None:
    """`reconcile status` prints box-sourced reasons in a table; a narrow terminal folds or
    cuts the cell ("sk-demo-0123…"), so the stream's scrub never sees the whole value and
    used to let its first half through. The reasons are scrubbed before the table is laid out.
    """
    agent = AgentStatusOut(
        agent="us-east-fast-001", tier="fast", shard="us-east", color=Color.RED,
        reasons=[f"health: auth failed with key {registered}"], state="reachable",
        agent_version="1.0", revision=None, heartbeat_age_s=1.0, error_rate=1.0,
        latency_p95_s=None, queue_depth=0,
    )  # fmt: skip
    report = StatusReport(
        fleet_id="acme-support", checked_at="now", worst=Color.RED, totals={"red": 1},
        groups=[GroupOut(shard="us-east", tier="fast", green=0, yellow=0, red=1)],
        versions={"1.0": 1}, revisions={}, orphans=[], agents=[agent],
    )  # fmt: skip
    captured = io.StringIO()
    real = sys.stdout
    sys.stdout = captured
    try:
        with redacted_output():
            Console(highlight=False, soft_wrap=True, width=80).print(status_text(report))
    finally:
        sys.stdout = real
    text = captured.getvalue()
    assert "authfailed" in "".join(text.split()), text
    assert hits(text.encode(), {"canary": registered}) == [], text
    assert partial(text, registered) == [], text
