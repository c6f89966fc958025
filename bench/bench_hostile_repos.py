"""The hostile-repo property (tests/hostile.py) run far longer than CI runs it.

Generates hostile config repos (symlinks and FIFOs in place of config files, random
bytes, huge values, odd box paths, pasted credentials) and checks each: only
ConfigErrors, nothing opened beyond the repo, no secret in any message. Prints one
JSON line: examples run, failures (with the first failure's message), seconds.
Not a test; never gates CI.

Usage: .venv/bin/python bench/bench_hostile_repos.py [EXAMPLES]   (default 5,000)
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile import HostileRepo, check, hostile_repos


def main(argv: list[str]) -> int:
    examples = int(argv[0]) if argv else 5_000
    ran = 0
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(hostile_repos())
    def run(repo: HostileRepo) -> None:
        nonlocal ran
        ran += 1
        try:
            check(repo)
        except AssertionError as exc:
            failures.append(str(exc)[:500])
            raise

    start = time.perf_counter()
    with contextlib.suppress(AssertionError):  # counted in `failures`
        run()
    seconds = round(time.perf_counter() - start, 2)
    print(
        json.dumps(
            {
                "what": "hostile repos: load + validate, no crash, no read beyond, no leak",
                "examples": ran,
                "failures": len(failures),
                "first_failure": failures[0] if failures else None,
                "seconds": seconds,
            }
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
