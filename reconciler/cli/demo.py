"""reconcile demo: a local fleet of simulated agent boxes on loopback, and a walkthrough.

`reconcile demo` alone runs the walkthrough (a list of steps, so that new
capabilities add a step); `up`, `down` and `fault` manage the fleet in DIR.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.common import Exit, err, fail, out
from reconciler.demo import provider
from reconciler.demo.faults import FaultError, FaultKind, parse_kind

if TYPE_CHECKING:  # the boxes (asyncssh, age, the config loader) load when a command runs
    from reconciler.demo import runner

DEFAULT_DIR = Path("demo-fleet")
DEFAULT_AGENTS = 20

DirOpt = Annotated[
    Path,
    typer.Option(
        "--dir",
        help="The demo fleet's directory (keys, secrets, boxes, DIR/fleet).",
        file_okay=False,
    ),
]

AgentsOpt = Annotated[int, typer.Option("--agents", "-n", help="How many boxes.")]

demo_app = typer.Typer(
    help=(
        "A local fleet of simulated agent boxes on loopback (real SSH, real HTTP) to try "
        "every command against.\n\nExample:  reconcile demo up --agents 50 --dir demo-fleet"
    ),
    no_args_is_help=False,
    rich_markup_mode=None,
)


def _fleet_summary(info: runner.FleetInfo, seconds: float | None = None) -> None:
    from reconciler.demo.fleetrepo import HEAD_MESSAGE

    d, agents = info.dir, info.agents
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    ports = sorted(a["ssh_port"] for a in agents.values())
    err.print(
        f"demo fleet: {len(agents)} boxes on 127.0.0.1 (SSH ports {ports[0]}..{ports[-1]}), "
        f"{len(info.pids)} worker process(es){took}",
        markup=False,
    )
    err.print(f"  config repo:  {d.repo}  (head: {HEAD_MESSAGE})", markup=False)
    err.print(f"  SSH key:      {d.key}  known_hosts: {d.known_hosts}", markup=False)
    secrets = f"{d.repo}/secrets/*.age (age-encrypted; identity {d.age_identity})"
    err.print(f"  secrets:      {secrets}", markup=False)
    name = next(iter(agents))
    err.print(
        f"  try:          ssh -i {d.key} -o UserKnownHostsFile={d.known_hosts} "
        f"-p {agents[name]['ssh_port']} {info.doc.get('user', 'agent')}@127.0.0.1 agentctl health",
        markup=False,
    )


def _start(dir: Path, agents: int, workers: int | None, rate: float, seed: int) -> runner.UpResult:
    from reconciler.demo import runner
    from reconciler.demo.fleetrepo import DemoSetupError

    try:
        return runner.up(dir, agents, workers=workers, rate=rate, seed=seed)
    except DemoSetupError as exc:
        fail(str(exc))


@demo_app.command()
def up(
    agents: AgentsOpt = DEFAULT_AGENTS,
    dir: DirOpt = DEFAULT_DIR,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Stay attached; Ctrl-C stops the fleet.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Worker processes (default: one per 250 boxes, at most one per core)."
        ),
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Tasks per second per agent.")] = 10.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the agents' random numbers.")] = 0,
) -> None:
    """Start N boxes and write DIR/fleet, a git config repo whose agents are those boxes.

    The boxes run the repo's first commit; its head commit carries one change to roll out.

    Example:  reconcile demo up --agents 50 --dir demo-fleet
    """
    result = _start(dir, agents, workers, rate, seed)
    _fleet_summary(result.info, result.seconds)
    out.print(f"reconcile diff --repo {result.info.dir.repo}", markup=False)
    if not foreground:
        err.print(f"stop it with: reconcile demo down --dir {dir}", markup=False)
        return
    _wait_then_down(dir)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_then_down(dir: Path) -> None:
    from reconciler.demo import runner

    err.print("running in the foreground; Ctrl-C stops the fleet", markup=False)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while runner.running_pids(dir):
            time.sleep(1)
        err.print("the demo workers exited", markup=False)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _down(dir)


def _down(dir: Path) -> None:
    from reconciler.demo import runner
    from reconciler.demo.fleetrepo import DemoSetupError

    try:
        result = runner.down(dir)
    except DemoSetupError as exc:
        fail(str(exc))
    if result.open_ports:
        fail(
            f"ports still open after stopping the workers: {result.open_ports[:10]}; "
            "another process may hold them"
        )
    killed = f" ({len(result.killed)} killed after the timeout)" if result.killed else ""
    err.print(
        f"demo fleet in {dir} stopped: {len(result.stopped)} worker(s){killed}, ports closed",
        markup=False,
    )


@demo_app.command()
def down(dir: DirOpt = DEFAULT_DIR) -> None:
    """Stop every process `demo up` started for DIR and check that their ports closed.

    Example:  reconcile demo down --dir demo-fleet
    """
    _down(dir)


_KINDS = "; ".join(f"{k.value}: {k.help}" for k in FaultKind)


@demo_app.command()
def fault(
    agent: Annotated[str, typer.Argument(help="The agent whose box misbehaves.")],
    kind: Annotated[str | None, typer.Argument(help=f"The fault. {_KINDS}.")] = None,
    value: Annotated[
        float | None, typer.Argument(help="The fault's VALUE, where it takes one.")
    ] = None,
    dir: DirOpt = DEFAULT_DIR,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the fault (or, without KIND, all).")
    ] = False,
) -> None:
    """Inject a fault into one box of a running demo fleet (`--clear` removes it).

    Example:  reconcile demo fault --dir demo-fleet us-east-fast-001 error-rate 0.3
    """
    from reconciler.demo import control
    from reconciler.demo.fleetrepo import DemoSetupError

    try:
        parsed: FaultKind | None = parse_kind(kind) if kind is not None else None
        if clear:
            active = control.clear(dir, agent, parsed)
        elif parsed is None:
            fail("name a fault KIND, or pass --clear to remove all of the box's faults")
        else:
            active = control.inject(dir, agent, parsed, value)
    except (DemoSetupError, FaultError) as exc:
        fail(str(exc))
    shown = ", ".join(k if v is None else f"{k}={v:g}" for k, v in active.items()) or "none"
    err.print(f"{agent}: active faults: {shown}", markup=False)


# -- the walkthrough -----------------------------------------------------------------------


@dataclass
class Walk:
    """What the walkthrough's steps share."""

    dir: Path
    agents: int
    info: runner.FleetInfo | None = None

    @property
    def repo(self) -> Path:
        return self.dir / "fleet"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of `reconcile demo`: a title and what it does (exits on failure)."""

    title: str
    run: Callable[[Walk], None]


def _step_up(w: Walk) -> None:
    from reconciler.demo import runner

    if runner.running_pids(w.dir):
        # The walkthrough commits to the demo repo (and a rolled-back head is blocked), so
        # a second walkthrough starts from a fresh fleet rather than the changed one.
        err.print(
            f"a demo fleet from an earlier run is up in {w.dir}: starting afresh", markup=False
        )
        _down(w.dir)
    result = _start(w.dir, w.agents, None, 10.0, 0)
    w.info = result.info
    _fleet_summary(result.info, result.seconds)


def _step_validate(w: Walk) -> None:
    from reconciler.config.errors import ConfigErrors
    from reconciler.config.repo import load_repo
    from reconciler.repo import read_work_tree

    try:
        repo = load_repo(read_work_tree(w.repo))
    except ConfigErrors as exc:
        for e in exc.errors:
            err.print(str(e), markup=False)
        fail(f"the demo's config repo {w.repo} is invalid; `reconcile demo down --dir {w.dir}`")
    err.print(
        f"ok: {len(repo.agents)} agents in {len(repo.shards)} shards and {len(repo.tiers)} tiers",
        markup=False,
    )


def _reconcile(w: Walk, *args: str, ok: tuple[int, ...] = (0,)) -> int:
    """Run one `reconcile` command as the operator would, showing it and its output."""
    shown = " ".join(("reconcile", *args))
    err.print(f"[cyan]$ {shown}[/]", markup=True)
    done = subprocess.run([sys.executable, "-m", "reconciler", *args], check=False)
    if done.returncode not in ok:
        fail(f"`{shown}` exited {done.returncode}; the demo fleet is still up in {w.dir}")
    return done.returncode


def _git_commit(repo: Path, message: str, *paths: str) -> None:
    git = ["git", "-c", "user.name=reconciler demo", "-c", "user.email=demo@localhost"]
    if paths:
        subprocess.run([*git, "add", *paths], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", message, *paths], cwd=repo, check=True)
        return
    subprocess.run([*git, "commit", "-qam", message], cwd=repo, check=True)


def _step_diff(w: Walk) -> None:
    _reconcile(w, "diff", "--repo", str(w.repo), "--exit-code", ok=(0, 2))


def _step_dry_run(w: Walk) -> None:
    _reconcile(w, "apply", "--repo", str(w.repo), "--dry-run")


def _step_apply(w: Walk) -> None:
    _reconcile(w, "apply", "--repo", str(w.repo), "--yes", "--state-dir", str(w.dir / "state"))


def _step_rotate(w: Walk) -> None:
    """The API key leaked: a new one from the provider, rotated in, the old one retired."""
    from reconciler.demo.layout import write_private

    new_key = f"sk-demo-{secrets.token_hex(16)}"
    provider.issue(w.dir, new_key)  # what the operator gets from the model provider
    key_file = w.dir / "new-api-key"
    write_private(key_file, new_key.encode())
    err.print(
        f"the API key leaked: the provider issued a new one ({key_file}); rotate it in waves "
        "behind an auth-error gate, then retire the old value from every box",
        markup=False,
    )
    try:
        _reconcile(
            w, "rotate-secret", "anthropic_api_key", "--repo", str(w.repo), "--value-file",
            str(key_file), "--yes", "--state-dir", str(w.dir / "state"),
        )  # fmt: skip
    finally:
        key_file.unlink(missing_ok=True)
    _git_commit(w.repo, "secret anthropic_api_key: rotated", "secrets/anthropic_api_key.age")
    err.print(
        "committed the re-encrypted secrets/anthropic_api_key.age; now revoke the old key at "
        "the provider (python -m reconciler.demo.provider revoke DIR, key on stdin)",
        markup=False,
    )


def _step_bad_change(w: Walk) -> None:
    tier = w.repo / "agents" / "tier-fast.yaml"
    text = tier.read_text(encoding="utf-8")
    if "max_tokens: 512" in text:
        verbose = (
            "  max_tokens: 3072\n  prompt: |\n    You are a customer-support agent for Acme.\n"
            "    Think step by step and explain every detail of your answer.\n"
        )
        tier.write_text(text.replace("  max_tokens: 512\n", verbose, 1), encoding="utf-8")
        _git_commit(w.repo, "tier fast: think step by step, max_tokens 3072")
    err.print(
        "committed the classic bad prompt change to tier fast: errors stay flat, output tokens "
        "per task multiply; the canary's gates catch it and the rollout undoes itself (exit 3)",
        markup=False,
    )
    _reconcile(
        w, "apply", "--repo", str(w.repo), "--yes", "--state-dir", str(w.dir / "state"), ok=(3,)
    )


def _step_status(w: Walk) -> None:
    code = _reconcile(w, "status", "--repo", str(w.repo), "--window", "3", ok=(0, 1, 2))
    if code == 2:  # the bad head was rolled back: its boxes run the revision before it
        err.print(
            "exit 2: the tier fast boxes run the revision before the bad change, which the gates "
            f"rolled back and blocked; `git -C {w.repo} revert --no-edit HEAD` makes the repo say "
            "what they run (the rollback in git), then `reconcile apply` has nothing to write",
            markup=False,
        )


def _step_next(w: Walk) -> None:
    for command in (
        f"reconcile diff --repo {w.repo}",
        f"reconcile apply --repo {w.repo}",
        f"reconcile status --repo {w.repo}",
        f"reconcile demo down --dir {w.dir}",
    ):
        out.print(command, markup=False)


WALKTHROUGH: list[Step] = [
    Step("start the demo fleet", _step_up),
    Step("validate its config repo (reconcile validate --repo DIR/fleet)", _step_validate),
    Step("the fleet diff: the repo's head against what the boxes run", _step_diff),
    Step("the plan, touching nothing", _step_dry_run),
    Step("roll the head commit out in waves", _step_apply),
    Step("a leaked API key, rotated with zero downtime", _step_rotate),
    Step("a bad change, rolled back by itself", _step_bad_change),
    Step("the health matrix", _step_status),
    Step("what to run next", _step_next),
]


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    dir: DirOpt = DEFAULT_DIR,
    agents: AgentsOpt = DEFAULT_AGENTS,
) -> None:
    """Try reconciler on a local fleet: start it, diff, apply in waves, rotate a leaked key,
    a bad change rolled back, status.

    Example:  reconcile demo
    """
    if ctx.invoked_subcommand is not None:
        # `reconcile demo --dir X up` means `reconcile demo up --dir X`: options given to the
        # group become the subcommand's defaults (its own options still win)
        given = {
            name: value
            for name, value in (("dir", dir), ("agents", agents))
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        }
        if given:
            ctx.default_map = {
                "up": given,
                "down": {k: v for k, v in given.items() if k == "dir"},
                "fault": {k: v for k, v in given.items() if k == "dir"},
            }
        return
    w = Walk(dir, agents)
    for i, step in enumerate(WALKTHROUGH, 1):
        err.print(f"\n[bold]{i}. {step.title}[/]", markup=True)
        step.run(w)
    raise typer.Exit(Exit.OK)
