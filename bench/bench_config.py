"""Config core at fleet scale: load + layer + validate + render every agent of a big repo.

Generates repos of 1,000 and 10,000 agents in a temp dir (the example repo's fleet.yaml,
tiers, base and payload schema; several shard files, each with shard defaults, a few
agent-level overrides and labels), then, each size in a fresh process so the peak RSS is
its own, times reading the files, `load_repo` (safe load, shape checks, layering with
provenance, payload schema, cross-file rules) and rendering + hashing every agent's payload.

Prints one JSON line per size; asserts no time. Target: 10,000 agents in under 2 s.

Usage: .venv/bin/python bench/bench_config.py [N ...]
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fleet-config-example"
TIERS = ("fast", "fast", "fast", "smart", "smart", "batch")


def _shard_text(shard: str, index: int, first: int, count: int) -> str:
    lines = [
        "# yaml-language-server: $schema=../schemas/shard.schema.json",
        f"shard: {shard}",
        f"description: Generated shard {shard}.",
        "",
        "defaults:",
        "  labels:",
        f"    region: {shard}",
        "  config:",
        f"    data_residency: {('us', 'eu', 'apac')[index % 3]}",
        "    log_level: warning",
        "",
        "agents:",
    ]
    for n in range(first, first + count):
        tier = TIERS[n % len(TIERS)]
        lines += [
            f"  - name: {shard}-{tier}-{n:05d}",
            f"    tier: {tier}",
            f"    host: 10.{index}.{n // 250 % 250}.{n % 250 + 1}",
        ]
        if n % 10 == 0:
            lines.append('    labels: {canary: "true"}')
        if n % 25 == 0:
            lines += ["    config:", "      max_tokens: 2048", "      tools: [kb_lookup]"]
        if n % 97 == 0:
            lines += ["    config:" if n % 25 else "", "      debug: null"]
    return "\n".join(line for line in lines if line) + "\n"


def generate(dest: Path, agents: int) -> Path:
    """Write a valid repo of `agents` agents under `dest`; return its root."""
    repo = dest / f"fleet-{agents}"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("shards"))
    (repo / "shards").mkdir()
    shards = max(3, agents // 500)
    per = -(-agents // shards)
    first = 0
    for i in range(shards):
        count = min(per, agents - first)
        name = f"region-{i:02d}"
        (repo / "shards" / f"{name}.yaml").write_text(_shard_text(name, i, first, count))
        first += count
    return repo


def measure(repo: Path) -> dict[str, object]:
    """Time one full load of `repo` in this process."""
    from reconciler.config.repo import load_repo  # noqa: PLC0415 (imports are not timed)
    from reconciler.render import render_payload, sha256_hex  # noqa: PLC0415
    from reconciler.repo import read_work_tree  # noqa: PLC0415

    t0 = time.perf_counter()
    files = read_work_tree(repo)
    t1 = time.perf_counter()
    loaded = load_repo(files)
    t2 = time.perf_counter()
    shas = {name: sha256_hex(render_payload(ea.agent.config)) for name, ea in loaded.agents.items()}
    t3 = time.perf_counter()
    return {
        "what": "config load+layer+validate+render",
        "n": len(shas),
        "files": len(files),
        "bytes": sum(len(b) for b in files.values()),
        "seconds": round(t3 - t0, 3),
        "read_s": round(t1 - t0, 3),
        "load_validate_s": round(t2 - t1, 3),
        "render_s": round(t3 - t2, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        print(json.dumps(measure(Path(argv[1]))))
        return 0
    sizes = [int(a) for a in argv] or [1_000, 10_000]
    with tempfile.TemporaryDirectory(prefix="bench-config-") as tmp:
        for n in sizes:
            repo = generate(Path(tmp), n)
            done = subprocess.run(
                [sys.executable, __file__, "--measure", str(repo)],
                check=True,
                capture_output=True,
                text=True,
            )
            sys.stdout.write(done.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
