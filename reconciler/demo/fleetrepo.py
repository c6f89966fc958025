"""The demo's config repo: fleet-config-example pointed at the demo boxes, in git.

The repo keeps the example's tiers, base, shard defaults, alerts, secrets index
and payload schema; only the shards' agent lists, fleet.yaml's connection and
secrets settings, the soak time and _base.yaml's commands are rewritten (YAML
round-trip for the small files, so comments stay). The secret values go into the
repo age-encrypted (the age backend: secrets/NAME.age, to the one recipient in
secrets/recipients.txt, the demo's identity kept in DIR, outside the repo). Two
commits: the first is what the boxes run (tier fast on claude-haiku-4); the head
carries one realistic change (tier fast upgraded to claude-haiku-4-5), so the first
diff shows exactly that, with its cost in dollars: the example's price table (the
demo agents charge the same prices, demo/workload.py) times the demo's traffic, and
usage.yaml written from the demo's configured task rate and each tier's tokens per
task, so that a pull-request diff's estimate agrees with the live one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

import reconciler
from reconciler.demo.layout import DemoDir, DemoSecrets
from reconciler.errors import ReconcilerError
from reconciler.secretstore.age import RECIPIENTS_FILE, age_file, encrypt, read_recipients
from reconciler.secretstore.repofile import write_secrets_file

SHARDS: Final = ("us-east", "eu-west", "ap-south")
TIERS: Final = ("fast", "smart", "batch")
FIRST_FAST_MODEL: Final = "claude-haiku-4"
HEAD_FAST_MODEL: Final = "claude-haiku-4-5"
CANARY: Final = f"{SHARDS[0]}-{TIERS[0]}-001"  # labelled canary, as in the example
HEAD_MESSAGE: Final = f"tier fast: upgrade model to {HEAD_FAST_MODEL}"
DEMO_SOAK_S: Final = 5
# A demo canary at the demo's default 10 tasks/s finishes ~50 tasks in one soak; the
# example's 200-sample minimum (ten minutes at 2 tasks/s) would leave every gate waiting.
DEMO_MIN_SAMPLES: Final = 30
# A gate still short of samples fails after this long: in the demo a failure costs seconds.
DEMO_INCONCLUSIVE_WAIT_S: Final = 15
# The watchdog calls an agent with a queue and no task done for this long stalled (demo
# agents finish a task every 0.1 s); it also watches a wave this long when its soak is 0.
DEMO_STALL_WINDOW_S: Final = 3
DEMO_HEARTBEAT_AGE_S: Final = 5
# Where the demo boxes keep the agents' files (the example's config_path, under each box's
# SFTP root): declared in fleet.yaml's connection.allowed_paths, which has no default.
DEMO_ALLOWED_PATHS: Final = ("/etc/agent",)
COMMANDS: Final = {
    "reload": ["agentctl", "reload"],
    "restart": ["agentctl", "restart"],
    "health": ["agentctl", "health"],
}


class DemoSetupError(ReconcilerError):
    """The demo fleet could not be set up (missing example, git failing, ...)."""


@dataclass(frozen=True, slots=True)
class DemoAgent:
    """One agent of the demo fleet and the ports of its box."""

    name: str
    shard: str
    tier: str
    ssh_port: int
    http_port: int
    config_path: str | None = None  # the example's /etc/agent/config.yaml when None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/metrics"


def agent_names(n: int) -> list[tuple[str, str, str]]:
    """N (name, shard, tier), spread round-robin over the shards and the tiers."""
    counts: dict[tuple[str, str], int] = {}
    out = []
    for i in range(n):
        shard, tier = SHARDS[i % len(SHARDS)], TIERS[(i // len(SHARDS)) % len(TIERS)]
        counts[shard, tier] = counts.get((shard, tier), 0) + 1
        out.append((f"{shard}-{tier}-{counts[shard, tier]:03d}", shard, tier))
    return out


def example_dir() -> Path:
    """fleet-config-example/ of this checkout (or a copy shipped in reconciler/data/)."""
    package = Path(reconciler.__file__).resolve().parent
    for candidate in (package.parent / "fleet-config-example", package / "data" / "example"):
        if (candidate / "fleet.yaml").is_file():
            return candidate
    raise DemoSetupError(
        f"fleet-config-example/ not found beside {package}; run the demo from a source checkout"
    )


def _yaml() -> YAML:
    y = YAML()  # round-trip: keeps comments and key order
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _edit(path: Path, change: Any) -> None:
    y = _yaml()
    doc = y.load(path.read_text(encoding="utf-8"))
    change(doc)
    buf = io.StringIO()
    y.dump(doc, buf)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _flow(items: Sequence[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _fleet_yaml(d: DemoDir, user: str, allowed_paths: Sequence[str]) -> Any:
    def change(doc: CommentedMap) -> None:
        conn = doc["connection"]
        conn["user"] = user
        conn["key"] = str(d.key)
        conn["known_hosts"] = str(d.known_hosts)
        conn["allowed_paths"] = _flow(list(allowed_paths))
        rollout = doc["rollout"]
        rollout["soak_s"] = DEMO_SOAK_S
        rollout.ca.items.pop("soak_s", None)
        rollout["stall_window_s"] = DEMO_STALL_WINDOW_S
        rollout["max_heartbeat_age_s"] = DEMO_HEARTBEAT_AGE_S
        doc["metrics"]["inconclusive_wait_s"] = DEMO_INCONCLUSIVE_WAIT_S
        doc["metrics"].ca.items.pop("inconclusive_wait_s", None)
        for gate in doc.get("gates") or []:
            gate["min_samples"] = DEMO_MIN_SAMPLES
            gate.ca.items.pop("min_samples", None)
        # The demo's journal and lock live in its DIR: two demo fleets (same fleet id) never
        # share a state dir, and `demo down` + rm -r DIR leaves nothing behind.
        doc["state_dir"] = str(d.reconciler_state)
        # Values: the repo's secrets/NAME.age, decrypted with DIR's identity (no files:).
        secrets = doc["secrets"]
        secrets.pop("files", None)
        secrets["fleet_key_file"] = str(d.fleet_key)
        secrets["age"] = CommentedMap([("identity_file", str(d.age_identity))])

    return change


def _base_yaml(doc: CommentedMap) -> None:
    commands = doc["commands"]
    for action, argv in COMMANDS.items():
        commands[action] = _flow(argv)


def _fast_model(model: str) -> Any:
    def change(doc: CommentedMap) -> None:
        doc["config"]["model"] = model

    return change


def _shard_text(text: str, agents: list[DemoAgent]) -> str:
    """The shard file with its header kept verbatim and its agent list replaced."""
    head, sep, _ = text.partition("\nagents:")
    if not sep:
        raise DemoSetupError("the example's shard files must end with their `agents:` list")
    lines = [f"{head}\nagents:{'' if agents else ' []'}"]
    for a in agents:
        lines += [
            f"  - name: {a.name}",
            f"    tier: {a.tier}",
            "    host: 127.0.0.1",
            f"    port: {a.ssh_port}",
            f"    health_url: {a.health_url}",
            f"    metrics_url: {a.metrics_url}",
        ]
        if a.config_path is not None:
            lines.append(f"    config_path: {a.config_path}")
        if a.name == CANARY:
            lines.append('    labels: {canary: "true"}')
    return "\n".join(lines) + "\n"


INDEX_NOTE: Final = (
    "# Names only. The demo keeps each value here age-encrypted (NAME.age, to the keys in\n"
    "# recipients.txt); `reconcile secrets set NAME --stdin` writes a new one.\n"
)


def _write_secrets(d: DemoDir, secrets: DemoSecrets) -> None:
    """secrets/recipients.txt and every value encrypted to it, as `secrets set` writes them."""
    (d.repo / "secrets" / RECIPIENTS_FILE).write_text(
        "# age public keys that can decrypt secrets/*.age, one a line\n"
        f"{secrets.recipient}  # the demo fleet (identity: {d.age_identity.name} in its DIR)\n",
        encoding="utf-8",
    )
    recipients = read_recipients(d.repo)
    for name, value in sorted(secrets.values.items()):
        write_secrets_file(d.repo, age_file(name), encrypt(value, recipients))
    # The example's header says values never enter the repo; the demo's do, encrypted.
    index = d.repo / "secrets" / "index.yaml"
    lines = index.read_text(encoding="utf-8").splitlines(keepends=True)
    schema = lines[:1] if lines and "$schema" in lines[0] else []
    rest = lines[len(schema) :]
    while rest and rest[0].startswith("#"):
        rest.pop(0)
    index.write_text("".join(schema) + INDEX_NOTE + "".join(rest), encoding="utf-8")


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; DemoSetupError with its stderr on failure."""
    cmd = [
        "git",
        "-c", "user.name=reconcile demo",
        "-c", "user.email=demo@localhost",
        "-c", "commit.gpgsign=false",
        "-c", "init.defaultBranch=main",
        *args,
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DemoSetupError("git is not installed; the demo's config repo needs it") from None
    if done.returncode:
        raise DemoSetupError(f"git {args[0]} in {repo} failed: {done.stderr.strip()}")
    return done.stdout.strip()


USAGE_HEADER: Final = (
    "# yaml-language-server: $schema=schemas/usage.schema.json\n"
    "# Expected traffic per agent of each tier, for pull-request cost estimates (docs/cost.md).\n"
    "# Written by the demo from its configured task rate and each tier's tokens per task.\n"
)


def usage_text(repo: Path, rate: float) -> str:
    """usage.yaml for the demo repo as it stands: `rate` tasks/s per agent, and each tier's
    mean tokens per task as the demo agents draw them (demo/workload.py) from its config."""
    from reconciler.config.errors import ConfigErrors  # noqa: PLC0415
    from reconciler.config.repo import load_repo  # noqa: PLC0415 (the demo's own repo)
    from reconciler.demo.workload import behaviour  # noqa: PLC0415
    from reconciler.repo import read_work_tree  # noqa: PLC0415

    lines = [USAGE_HEADER]
    try:
        loaded = load_repo(read_work_tree(repo))
    except ConfigErrors:  # e.g. no agents at all: nothing to give traffic for
        return "".join([*lines, "tiers: {}\n"])
    lines = [USAGE_HEADER, f'window: "the demo\'s configured rate, {rate:g} tasks/s per agent"\n']
    lines.append("tiers:\n")
    for tier in TIERS:
        ea = next((ea for ea in loaded.agents.values() if ea.agent.tier == tier), None)
        if ea is None:
            continue
        how = behaviour(ea.agent.config, {}, base_error_rate=0.0)
        lines.append(
            f"  {tier}: {{tasks_per_day: {rate * 86_400:.0f}, "
            f"input_tokens_per_task: {how.tokens_in:.1f}, "
            f"output_tokens_per_task: {how.tokens_out:.1f}}}\n"
        )
    return "".join(lines)


def write_repo(
    d: DemoDir,
    agents: list[DemoAgent],
    secrets: DemoSecrets,
    *,
    user: str,
    allowed_paths: Sequence[str] = DEMO_ALLOWED_PATHS,
    rate: float = 2.0,
) -> tuple[str, str]:
    """Write and commit DIR/fleet (the secrets encrypted in its first commit); returns
    (first commit, head commit). The real-OpenSSH fleet (testing/realfleet.py) writes its
    repo here too: its agents name their own config_path, under its `allowed_paths`."""
    src = example_dir()
    shutil.copytree(src, d.repo, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    _write_secrets(d, secrets)
    _edit(d.repo / "fleet.yaml", _fleet_yaml(d, user, allowed_paths))
    _edit(d.repo / "agents/_base.yaml", _base_yaml)
    _edit(d.repo / "agents/tier-fast.yaml", _fast_model(FIRST_FAST_MODEL))
    for shard in SHARDS:
        path = d.repo / "shards" / f"{shard}.yaml"
        mine = [a for a in agents if a.shard == shard]
        path.write_text(_shard_text(path.read_text(encoding="utf-8"), mine), encoding="utf-8")
    (d.repo / "usage.yaml").write_text(usage_text(d.repo, rate), encoding="utf-8")
    git(d.repo, "init", "-q")
    git(d.repo, "add", "-A")
    git(d.repo, "commit", "-q", "-m", f"demo fleet: {len(agents)} agent(s) on loopback")
    first = git(d.repo, "rev-parse", "HEAD")
    _edit(d.repo / "agents/tier-fast.yaml", _fast_model(HEAD_FAST_MODEL))
    git(d.repo, "commit", "-q", "-am", HEAD_MESSAGE)
    return first, git(d.repo, "rev-parse", "HEAD")
