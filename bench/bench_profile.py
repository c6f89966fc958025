"""The per-box profile of one apply: deterministic counts beside the times (issue 19).

Starts a demo fleet of N boxes (`reconcile demo up`'s code path, `runner.up`; real SSH/SFTP
and HTTP servers on loopback, in worker processes) and prepares its repo for a speed
measurement, as bench_rollout and bench_vs_peers do:

    This bench DROPS GATES AND SOAK: fleet.yaml's metric gates are removed
    (`without_gates`), the rollout is one wave of 100% (`--waves` to change it) and
    `--soak 0`. Everything else apply does per box (live read, diff, lease, history,
    write, reload, verify, stamp, journal) runs as in production.

A warm-up apply (not profiled) brings every box to the head (the demo's own change), then
a commit changes every agent (`agents/_base.yaml` retry.backoff_s) and that apply is profiled:
`reconcile apply --yes --soak 0 --format json` as a child process of this script
(`bench_profile.py --child OUT -- ARGS`) which installs counting hooks and then calls the
console script's `main`. The hooks are monkeypatches made in that child process only (the
product code is not changed, and nothing else runs them); each counts and calls through:

- `asyncssh.sftp.SFTPClientHandler._send_request`: every SFTP request put on the wire,
  by packet kind (OPEN, READ, WRITE, CLOSE, STAT, posix-rename@openssh.com, ...), charged
  to the box whose `SshBox` operation sent it (a contextvar set around `SshBox._sftp`);
- `SshBox._sftp` / `SshBox.run`: the transport's operations per box (read, write, mkdir,
  rename, link, ...) and its remote commands by command line; `SshPool._connect`: connects;
- `HttpProbe._get`: HTTP reads per box (health answers, metrics text);
- `SqliteJournal._insert`, `begin_rollout`, `finish`: journal records, per box and not;
- `sqlite3.connect`: every connection gets a trace callback that counts commits (an
  autocommitted write statement, or a COMMIT) and which tables each one wrote. The state
  file is WAL with synchronous=FULL: one commit is one fsync of the WAL (checkpoints, every
  ~1,000 pages, add an fsync of the database file; not counted). The trace callback costs
  a little CPU per statement, which the CPU figures include. The driver journals in a
  batch (journal/sqlite.py): records are counted as they are recorded, commits as they
  happen, and a batch's commit serves every box, so it counts as the fleet's (per box 0).

Times (wall clock, comparable across the two processes): spawn → the child's interpreter
running the bench's code → `main` entered (the hooks' imports fall here: asyncssh,
sqlite3, httpx and the modules they hook, which apply loads anyway) → the first write to a
box (a mutating SFTP operation or a non-read-only command) → the last write → `main`
returned → the process reaped. The JSON event lines give the wave and box marks. Client
CPU is the child's (getrusage of the reaped child, with the git it ran), per box = / N.

Import time: a fresh `python -X importtime -c "import M1, M2, ..."` of the reconciler
modules the profiled apply had loaded when it exited (what `reconcile apply` imports,
measured alone, not under the hooks), its total of self times, the heaviest top-level
packages, and beside it `python -c pass`.

Prints one JSON object: the run, the times, the per-box counts (one number when every box
has the same count, else min / median / max), per-rollout totals, and with `--boxes`
every box's own counts.

    .venv/bin/python bench/bench_profile.py            # N=50
    .venv/bin/python bench/bench_profile.py --n 200    # the issue's figure
"""

from __future__ import annotations

import argparse
import contextvars
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
CHECKOUT = HERE.parent.parent
WRITE_OPS = frozenset({"write", "mkdir", "remove", "rmdir", "rmtree", "rename", "link"})
FLEET = "(fleet)"  # records and commits that belong to no one box


# --------------------------------------------------------------------------- the child


class Counts:
    """What the hooks saw in the child; `dump()` is the JSON the parent reads."""

    def __init__(self) -> None:
        self.sftp: dict[str, Counter[str]] = defaultdict(Counter)  # box -> packet kind
        self.ops: dict[str, Counter[str]] = defaultdict(Counter)  # box -> SshBox operation
        self.commands: dict[str, Counter[str]] = defaultdict(Counter)  # box -> command line
        self.http: dict[str, Counter[str]] = defaultdict(Counter)  # box -> health / metrics
        self.connects: Counter[str] = Counter()
        self.records: dict[str, Counter[str]] = defaultdict(Counter)  # box -> record kind
        self.commits: Counter[str] = Counter()  # box (or FLEET) -> commits
        self.commit_tables: Counter[str] = Counter()  # "steps", "rollouts+steps", "locks", ...
        self.record_types: Counter[str] = Counter()  # "intent Reload", "event BoxApplied", ...
        self.statements = 0
        self.marks: dict[str, float] = {}

    def mark(self, name: str, *, first: bool = True) -> None:
        now = time.time()
        if first:
            self.marks.setdefault(name, now)
        else:
            self.marks[name] = now

    def read(self, what: str) -> None:
        self.mark(f"first read {what}")
        self.mark(f"last read {what}", first=False)

    def wrote(self, what: str) -> None:
        for name in ("write", f"write {what}"):
            self.mark(f"first {name}")
            self.mark(f"last {name}", first=False)

    def dump(self) -> dict[str, Any]:
        def plain(d: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {k: dict(sorted(v.items())) for k, v in sorted(d.items())}

        return {
            "sftp": plain(self.sftp), "ops": plain(self.ops), "commands": plain(self.commands),
            "http": plain(self.http), "connects": dict(self.connects),
            "records": plain(self.records), "commits": dict(self.commits),
            "commit_tables": dict(self.commit_tables), "statements": self.statements,
            "record_types": dict(sorted(self.record_types.items())),
            "marks": self.marks,
        }  # fmt: skip


_BOX: contextvars.ContextVar[str] = contextvars.ContextVar("box", default="(no box)")
_AGENT: contextvars.ContextVar[str] = contextvars.ContextVar("agent", default=FLEET)
# The open-time schema transaction ends with `PRAGMA user_version=N`, which writes the header.
_SETTING = re.compile(r"^\s*PRAGMA\s+user_version\s*=", re.IGNORECASE)
_WRITES = re.compile(r"^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)"
                     r"\s+(\w+)", re.IGNORECASE)  # fmt: skip


class _Tracer:
    """A sqlite3 trace callback: counts commits (autocommitted writes, COMMIT) by table."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.in_txn = False
        self.tables: set[str] = set()

    def __call__(self, sql: str) -> None:
        self.counts.statements += 1
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            self.in_txn, self.tables = True, set()
        elif head.startswith(("COMMIT", "END")):
            self._commit()
            self.in_txn = False
        elif head.startswith("ROLLBACK"):
            self.in_txn, self.tables = False, set()
        elif (m := _WRITES.match(sql)) is not None or _SETTING.match(sql) is not None:
            self.tables.add(m.group(1).lower() if m is not None else "(schema)")
            if not self.in_txn:  # autocommit: the statement is its own transaction
                self._commit()

    def _commit(self) -> None:
        if not self.tables:
            return  # a read-only transaction writes nothing to the WAL
        self.counts.commits[_AGENT.get()] += 1
        self.counts.commit_tables["+".join(sorted(self.tables))] += 1
        self.tables = set()


def install_hooks(counts: Counts) -> None:
    """Monkeypatch (in this process only) the transport, HTTP probe and journal to count.

    Imported here, not at the top: the child's clock starts before these imports.
    """
    import sqlite3  # noqa: PLC0415

    from asyncssh import sftp as asftp  # noqa: PLC0415

    from reconciler.journal.sqlite import SqliteJournal  # noqa: PLC0415
    from reconciler.transport.http import HttpProbe  # noqa: PLC0415
    from reconciler.transport.ssh import SshBox, SshPool  # noqa: PLC0415

    names = {v: k.removeprefix("FXP_") for k, v in vars(asftp).items()
             if k.startswith("FXP_") and isinstance(v, int)}  # fmt: skip

    send = asftp.SFTPClientHandler._send_request

    def send_request(self: Any, pkttype: Any, args: Any, waiter: Any) -> None:
        kind = pkttype.decode() if isinstance(pkttype, bytes) else names.get(pkttype, pkttype)
        counts.sftp[_BOX.get()][str(kind)] += 1
        send(self, pkttype, args, waiter)

    asftp.SFTPClientHandler._send_request = send_request

    sftp_op = SshBox._sftp

    async def counted_sftp(self: SshBox, operation: str, path: str, body: Any, **kw: Any) -> Any:
        counts.ops[self.name][operation] += 1
        token = _BOX.set(self.name)
        try:
            return await sftp_op(self, operation, path, body, **kw)
        finally:
            _BOX.reset(token)
            if operation in WRITE_OPS:
                counts.wrote(operation)
            else:
                counts.read(operation)

    SshBox._sftp = counted_sftp  # type: ignore[method-assign]

    run = SshBox.run

    async def counted_run(
        self: SshBox, argv: Any, *, timeout: float, read_only: bool = False
    ) -> Any:
        counts.commands[self.name][" ".join(argv)] += 1
        token = _BOX.set(self.name)
        try:
            return await run(self, argv, timeout=timeout, read_only=read_only)
        finally:
            _BOX.reset(token)
            if not read_only:
                counts.wrote(" ".join(argv))
            else:
                counts.read(" ".join(argv))

    SshBox.run = counted_run  # type: ignore[method-assign]

    connect = SshPool._connect

    async def counted_connect(self: SshPool, target: Any) -> Any:
        counts.connects[target.name] += 1
        return await connect(self, target)

    SshPool._connect = counted_connect  # type: ignore[method-assign]

    get = HttpProbe._get

    async def counted_get(self: HttpProbe, url: str, box: str, operation: str, *a: Any) -> Any:
        what = "health" if operation.startswith("health") else "metrics"
        counts.http[box][what] += 1
        try:
            return await get(self, url, box, operation, *a)
        finally:
            counts.read(f"http {what}")

    HttpProbe._get = counted_get  # type: ignore[method-assign]

    insert = SqliteJournal._insert
    intents: dict[int, str] = {}  # seq -> the intent's command type

    def counted_insert(self: SqliteJournal, rollout_id: str, kind: str, agent: str | None,
                       intent: int | None, body: Any) -> int:  # fmt: skip
        who = agent or FLEET
        counts.records[who][kind] += 1
        if kind == "intent":
            what = str(body.get("command", {}).get("type"))
        elif kind == "result":
            what = intents.get(intent or 0, "?")
        else:
            what = str(body.get("type"))
        counts.record_types[f"{kind} {what}"] += 1
        token = _AGENT.set(who)
        try:
            seq = insert(self, rollout_id, kind, agent, intent, body)
        finally:
            _AGENT.reset(token)
        if kind == "intent":
            intents[seq] = what
        return seq

    SqliteJournal._insert = counted_insert  # type: ignore[method-assign]

    def fleet_record(name: str) -> None:
        original = getattr(SqliteJournal, name)

        def counted(self: SqliteJournal, *a: Any, **kw: Any) -> Any:
            counts.records[FLEET][name] += 1
            return original(self, *a, **kw)

        setattr(SqliteJournal, name, counted)

    fleet_record("begin_rollout")
    fleet_record("finish")

    sqlite_connect = sqlite3.connect

    def traced_connect(*a: Any, **kw: Any) -> sqlite3.Connection:
        conn = sqlite_connect(*a, **kw)
        conn.set_trace_callback(_Tracer(counts))
        return conn

    sqlite3.connect = traced_connect  # type: ignore[assignment]


def child(out: Path, argv: list[str]) -> None:
    """Run the console script's main with the hooks in; write the counts to `out`."""
    counts = Counts()
    counts.mark("child_start")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    install_hooks(counts)
    from reconciler.cli.app import main as reconcile_main  # noqa: PLC0415

    counts.mark("main_entered")
    cpu_main = resource.getrusage(resource.RUSAGE_SELF)
    code: Any = 0
    try:
        reconcile_main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        counts.mark("main_returned")
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        doc = counts.dump()
        doc["cpu_before_main_s"] = round(
            cpu_main.ru_utime + cpu_main.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3
        )
        doc["cpu_main_s"] = round(
            cpu1.ru_utime + cpu1.ru_stime - cpu_main.ru_utime - cpu_main.ru_stime, 3
        )
        doc["modules"] = sorted(m for m in sys.modules if m.startswith("reconciler."))
        out.write_text(json.dumps(doc), encoding="utf-8")
    sys.exit(code)


# --------------------------------------------------------------------------- the parent


def git(repo: Path, *args: str) -> str:
    g = ["git", "-c", "user.name=b", "-c", "user.email=b@localhost"]
    subprocess.run([*g, *args], cwd=repo, check=True, capture_output=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def edit(repo: Path, rel: str, pattern: str, new: str, message: str) -> str:
    path = repo / rel
    text = path.read_text(encoding="utf-8")
    changed, n = re.subn(pattern, new, text, count=1, flags=re.MULTILINE)
    assert n == 1, f"{pattern!r} not in {rel}"
    path.write_text(changed, encoding="utf-8")
    return git(repo, "commit", "-qam", message)


def children_cpu() -> tuple[float, float]:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime, u.ru_stime


def fsyncs(trace: Path, state: Path) -> dict[str, int]:
    """The fsync-family calls in an strace log, by the file they synced (-y names it)."""
    found: Counter[str] = Counter()
    for m in re.finditer(r"(\w*sync\w*)\(\d+<([^>]*)>", trace.read_text(encoding="utf-8")):
        path = m.group(2)
        where = path.replace(str(state), "STATE") if path.startswith(str(state)) else "other"
        found[f"{m.group(1)} {where}"] += 1
    return dict(sorted(found.items()))


def profiled_apply(args: list[str], out: Path, strace: Path | None = None) -> dict[str, Any]:
    """The apply as a hooked child; its counts, event marks, CPU and times.

    With `strace`, the child runs under `strace -f -y -e trace=%sync...` (slower; the
    times and CPU are then not comparable) and its fsync calls are counted too.
    """
    u0, s0 = children_cpu()
    t0 = time.time()
    cmd = [sys.executable, str(HERE), "--child", str(out), "--", *args]
    if strace is not None:
        cmd = ["strace", "-f", "-y", "-qq", "-o", str(strace),
               "-e", "trace=fsync,fdatasync,sync_file_range,syncfs", *cmd]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    events: dict[str, float] = {}
    for line in proc.stdout:
        if line.startswith("{"):
            name = str(json.loads(line).get("event"))
            now = time.time()
            events.setdefault(name, now)
            events[f"last {name}"] = now
    err = proc.stderr.read() if proc.stderr else ""
    code = proc.wait()
    t_end = time.time()
    u1, s1 = children_cpu()
    if not out.exists():
        raise SystemExit(f"the profiled apply wrote no counts (exit {code}): {err[-800:]}")
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    doc.update(exit=code, t0=t0, t_end=t_end, events=events, cpu_user_s=u1 - u0,
               cpu_sys_s=s1 - s0, stderr_tail=err[-800:] if code else "")  # fmt: skip
    return doc


def reconcile(args: list[str]) -> int:
    cmd = [sys.executable, "-m", "reconciler", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:1])} exited {done.returncode}: {done.stderr[-800:]}")
    return done.returncode


def import_time(modules: list[str]) -> dict[str, Any]:
    """`python -X importtime` of `modules` in a fresh process: total self time, heaviest."""
    code = "import " + ", ".join(modules)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CHECKOUT)
    wall = time.perf_counter() - t
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                          capture_output=True, text=True, cwd=CHECKOUT)  # fmt: skip
    by_top: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        by_top[name.split(".")[0]] += int(parts[0])
        if name.startswith("reconciler."):
            ours[name] += int(parts[0])
    total = sum(by_top.values())
    return {
        "modules": len(modules), "process_wall_s": round(wall, 3),
        "python_c_pass_s": round(bare, 3), "importtime_self_total_s": round(total / 1e6, 3),
        "heaviest_packages_s": {k: round(v / 1e6, 3) for k, v in by_top.most_common(8)},
        "heaviest_reconciler_modules_s": {k: round(v / 1e6, 3) for k, v in ours.most_common(6)},
    }  # fmt: skip


def spread(values: list[int]) -> int | dict[str, float]:
    """One number when every box has it, else min / median / max."""
    if not values:
        return 0
    if min(values) == max(values):
        return values[0]
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(doc: dict[str, Any], agents: list[str], show_boxes: bool) -> dict[str, Any]:
    n = len(agents)

    def per_box(section: str) -> dict[str, Any]:
        table: dict[str, dict[str, int]] = doc[section]
        keys = sorted({k for a in agents for k in table.get(a, {})})
        row = {k: spread([table.get(a, {}).get(k, 0) for a in agents]) for k in keys}
        row["total"] = spread([sum(table.get(a, {}).values()) for a in agents])
        return row

    fleet_records = doc["records"].get(FLEET, {})
    all_records = sum(sum(v.values()) for v in doc["records"].values())
    commits = sum(doc["commits"].values())
    boxes_of = {a: {s: doc[s].get(a, {}) for s in ("sftp", "ops", "commands", "http", "records")}
                for a in agents}  # fmt: skip
    for a in agents:
        boxes_of[a]["commits"] = doc["commits"].get(a, 0)
        boxes_of[a]["connects"] = doc["connects"].get(a, 0)
    m, t0, ev = doc["marks"], doc["t0"], doc["events"]

    def at(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    cpu = doc["cpu_user_s"] + doc["cpu_sys_s"]
    unchanged = [a for a in agents if not WRITE_OPS & set(doc["ops"].get(a, {}))]
    result: dict[str, Any] = {
        "bench": "profile", "n": n, "exit": doc["exit"], "boxes_not_written": unchanged,
        "per_box": {
            "sftp_requests": per_box("sftp"),
            "transport_ops": per_box("ops"),
            "remote_commands": per_box("commands"),
            "http_reads": per_box("http"),
            "ssh_connects": spread([doc["connects"].get(a, 0) for a in agents]),
            "journal_records": per_box("records"),
            "journal_commits": spread([doc["commits"].get(a, 0) for a in agents]),
            "client_cpu_s": round(cpu / n, 4),
        },
        "per_rollout": {
            "journal_records": all_records,
            "journal_records_not_per_box": fleet_records,
            "journal_records_by_type": doc["record_types"],
            "commits_fsyncs": commits,
            "commits_not_per_box": doc["commits"].get(FLEET, 0),
            "commits_by_tables": doc["commit_tables"],
            "sql_statements": doc["statements"],
            "sftp_requests": sum(sum(v.values()) for v in doc["sftp"].values()),
            "sftp_requests_no_box": sum(doc["sftp"].get("(no box)", {}).values()),
        },
        "cpu_s": {"client_total": round(cpu, 3), "user": round(doc["cpu_user_s"], 3),
                  "sys": round(doc["cpu_sys_s"], 3),
                  "child_before_main": doc["cpu_before_main_s"],
                  "child_in_main": doc["cpu_main_s"]},
        "wall_s": {
            "child_start": at(m.get("child_start")), "main_entered": at(m.get("main_entered")),
            "first_write": at(m.get("first write")), "last_write": at(m.get("last write")),
            "main_returned": at(m.get("main_returned")), "exit": at(doc["t_end"]),
        },
        "writes_s": {k.removeprefix("first write "): [at(v), at(m[f"last write {k[12:]}"])]
                     for k, v in sorted(m.items(), key=lambda kv: kv[1])
                     if k.startswith("first write ")},
        "reads_s": {k.removeprefix("first read "): [at(v), at(m[f"last read {k[11:]}"])]
                    for k, v in sorted(m.items(), key=lambda kv: kv[1])
                    if k.startswith("first read ")},
        "events_s": {k: at(v) for k, v in ev.items()
                     if k in ("rollout.started", "wave.started", "box.applied",
                              "last box.applied", "wave.finished", "rollout.finished")},
        "stderr_tail": doc["stderr_tail"],
    }  # fmt: skip
    w = result["wall_s"]
    if None not in (w["first_write"], w["last_write"]):
        result["wall_split_s"] = {
            "start_to_first_write": w["first_write"],
            "first_to_last_write": round(w["last_write"] - w["first_write"], 3),
            "last_write_to_exit": round(w["exit"] - w["last_write"], 3),
        }
    if show_boxes:
        result["boxes"] = boxes_of
    return result


def bench(n: int, waves: str, show_boxes: bool, strace: bool = False) -> dict[str, Any]:
    from reconciler.demo import runner  # noqa: PLC0415
    from reconciler.testing.fleetrepo import without_gates  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        root = Path(tmp)
        up = runner.up(root / "demo", n, tick_s=1.0)
        try:
            repo = root / "demo" / "fleet"
            common = ["--repo", str(repo), "--state-dir", str(root / "state")]
            without_gates(repo)
            edit(repo, "fleet.yaml", r"^  waves: .*$", f"  waves: {waves}",
                 f"bench: waves {waves}")  # fmt: skip
            reconcile(["apply", *common, "--yes", "--soak", "0"])  # warm-up: to the head
            # retry.backoff_s: set in _base.yaml only, overridden nowhere (log_level is,
            # by a shard): every box's config changes.
            edit(repo, "agents/_base.yaml", r"backoff_s: 2$", "backoff_s: 3",
                 "bench: every agent backs off 3 s")  # fmt: skip
            trace = root / "strace.log" if strace else None
            doc = profiled_apply(["apply", *common, "--yes", "--soak", "0", "--format", "json"],
                                 root / "counts.json", trace)  # fmt: skip
            synced = fsyncs(trace, root / "state") if trace is not None else None
        finally:
            runner.down(root / "demo")
    result = summarize(doc, sorted(up.info.agents), show_boxes)
    result["waves"] = waves
    if synced is not None:
        result["strace_fsyncs"] = synced
    result["import"] = import_time(doc["modules"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="boxes (default 50; the issue's: 200)")
    ap.add_argument("--waves", default="[100%]", help="fleet.yaml rollout.waves (default one)")
    ap.add_argument("--boxes", action="store_true", help="also print every box's own counts")
    ap.add_argument("--strace", action="store_true",
                    help="also count the apply's fsyncs with strace (skews the times)")  # fmt: skip
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        child(a.child, a.rest)
        return
    if a.strace and shutil.which("strace") is None:
        raise SystemExit("--strace: no strace on PATH (apt-get install strace)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(bench(a.n, a.waves, a.boxes, a.strace), indent=1), flush=True)


if __name__ == "__main__":
    main()
