"""Start-up time: what a command costs before it does anything (issue 19, "Start-up").

Runs, interleaved round by round (A B C D E, A B C D E, ...) so that a drift of the
machine's speed hits every command alike, each as a whole fresh process:

- `python -c pass`                                  (the interpreter alone)
- `python -c "import typer"`                        (the --help floor)
- `python -c "import typer, rich, pydantic, jsonschema, ruamel.yaml"`   (the validate floor)
- the same with the classes validate uses loaded (pydantic and jsonschema load lazily)
- `reconcile --help`
- `reconcile validate --repo fleet-config-example`

and prints each one's wall and CPU seconds (median of the rounds, min-max), then the two
targets, each as a median of the per-round figures (the pair measured back to back):

- validate - validate floor <= 0.2 s
- help / typer             <= 1.2

Prints; asserts no time (tests/test_imports.py holds what the commands may load).

`reconcile` is run as `python -m reconciler` with this checkout first on PYTHONPATH;
`--checkout DIR` times another checkout's code instead (e.g. the commit before a change,
from `git worktree add DIR COMMIT`), with the same interpreter and libraries.

Usage: .venv/bin/python bench/bench_startup.py [--rounds N] [--checkout DIR]
       (rounds: default 9, at least 5)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fleet-config-example"
PY = sys.executable
RECONCILE = [PY, "-m", "reconciler"]
VALIDATE_FLOOR = "import typer, rich, pydantic, jsonschema, ruamel.yaml"
FLOOR = "validate floor (typer rich pydantic jsonschema ruamel.yaml)"
VALIDATE = "reconcile validate (example)"
# `import pydantic` and `import jsonschema` load their packages lazily: this floor also loads
# what validate (and typer's own parameter parsing) take from them.
USED = "  the same, with the classes validate uses"
USED_FLOOR = (
    "import typer, rich.console, ruamel.yaml; from pydantic import BaseModel, TypeAdapter; "
    "from jsonschema import Draft202012Validator"
)
TYPER, HELP = "import typer", "reconcile --help"

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    TYPER: [PY, "-c", "import typer"],
    FLOOR: [PY, "-c", VALIDATE_FLOOR],
    USED: [PY, "-c", USED_FLOOR],
    HELP: [*RECONCILE, "--help"],
    VALIDATE: [*RECONCILE, "validate", "--repo", str(EXAMPLE)],
}


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run of argv: (wall s, CPU s of the child, user + sys)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=env["PYTHONPATH"], env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f}  ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="whose reconciler to time")
    args = parser.parse_args()
    rounds, checkout = max(5, args.rounds), args.checkout.resolve()
    env = {**os.environ, "PYTHONPATH": str(checkout)}

    for argv in COMMANDS.values():  # warm-up: page cache, .pyc files
        run_once(argv, env)
    wall: dict[str, list[float]] = {k: [] for k in COMMANDS}
    cpu: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(rounds):
        for label, argv in COMMANDS.items():
            w, c = run_once(argv, env)
            wall[label].append(w)
            cpu[label].append(c)

    print(f"start-up of {checkout}, {rounds} interleaved rounds; median (min-max) seconds")
    print(f"{'command':62} {'wall s':>24}   {'cpu s':>24}")
    for label in COMMANDS:
        print(f"{label:62} {spread(wall[label]):>24}   {spread(cpu[label]):>24}")

    floor, validate, typer_only, help_ = wall[FLOOR], wall[VALIDATE], wall[TYPER], wall[HELP]
    over = [v - f for v, f in zip(validate, floor, strict=True)]
    ratio = [h / t for h, t in zip(help_, typer_only, strict=True)]
    over_med, ratio_med = statistics.median(over), statistics.median(ratio)
    used = statistics.median([v - f for v, f in zip(validate, wall[USED], strict=True)])
    print()
    print(
        f"validate - validate floor: {over_med:+.3f} s per round (min {min(over):+.3f}, max "
        f"{max(over):+.3f}); target <= +0.200 s: {'met' if over_med <= 0.2 else 'NOT met'}"
    )
    print(f"validate - the floor with the classes it uses: {used:+.3f} s per round")
    print(
        f"help / import typer:       {ratio_med:.2f}x per round (min {min(ratio):.2f}, max "
        f"{max(ratio):.2f}); target <= 1.20x: {'met' if ratio_med <= 1.2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
