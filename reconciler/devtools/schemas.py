"""Write (or `--check`) the generated JSON Schemas: schemas/ and the example repo's copy.

Usage: python -m reconciler.devtools.schemas [--check] [--root DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from reconciler.model.schemas import expected


def stale(root: Path) -> list[Path]:
    """Generated files that are missing or differ from what the models give."""
    return [p for p, text in expected(root).items() if not p.exists() or p.read_text() != text]


def main(argv: list[str]) -> int:
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else Path.cwd()
    if "--check" in argv:
        bad = stale(root)
        for p in bad:
            print(f"{p}: stale; run python -m reconciler.devtools.schemas", file=sys.stderr)
        return 1 if bad else 0
    for path, text in expected(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
