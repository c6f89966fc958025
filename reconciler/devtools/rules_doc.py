"""Writes (or checks) docs/rules.md from `reconciler.config.rules_doc.render()`.

`python -m reconciler.devtools.rules_doc` writes it; `--check` exits 1 when the
file is stale (a test runs the same check), so the catalogue never drifts from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from reconciler.config import rules_doc

DOC: Final = Path(rules_doc.DOC)


def stale(root: Path) -> bool:
    """Whether docs/rules.md under `root` is missing or differs from `render()`."""
    path = root / DOC
    return not path.is_file() or path.read_text(encoding="utf-8") != rules_doc.render()


def main(argv: list[str]) -> int:
    """Write docs/rules.md (or, with --check, report whether it is stale)."""
    root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else Path.cwd()
    if "--check" in argv:
        if stale(root):
            print(
                f"{root / DOC}: stale; run python -m reconciler.devtools.rules_doc",
                file=sys.stderr,
            )
            return 1
        return 0
    (root / DOC).parent.mkdir(parents=True, exist_ok=True)
    (root / DOC).write_text(rules_doc.render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
