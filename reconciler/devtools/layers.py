"""The package picture of docs/architecture.md, drawn from the code's own imports.

Usage:
    python -m reconciler.devtools.layers              # print the diagram block
    python -m reconciler.devtools.layers --write docs/architecture.md
    python -m reconciler.devtools.layers --check docs/architecture.md   # exit 1 when stale

Every `import reconciler.X...` / `from reconciler.X... import` in package P (at any
depth, TYPE_CHECKING blocks included) is an arrow P -> X. `LAYERS` ranks the
packages: an arrow may only point to a lower rank (or within a package);
tests/architecture/test_layers.py holds the code to that.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from reconciler.devtools.generated import block_main
from reconciler.rollout.diagram import splice as _splice

ROOT: Final = Path(__file__).resolve().parents[1]
BEGIN: Final = "<!-- BEGIN package-layers (python -m reconciler.devtools.layers --write) -->"
END: Final = "<!-- END package-layers -->"

# Higher layers import lower ones, never the other way; within a layer, arrows may go
# either way as long as the packages form no circle.
LAYERS: Final[tuple[tuple[str, ...], ...]] = (
    ("errors", "model"),  # errors.py: the one error tree, a module that imports nothing of ours
    (
        "config",
        "plan",
        "render",
        "secrets",
        "status",
        "gates",
        "diff",
        "rollout",
        "report",
        "alerts",
        "capacity",
    ),
    ("transport", "metrics", "journal", "repo", "secretstore", "github"),
    ("engine",),
    ("app", "demo"),
    ("cli", "testing", "devtools"),
)
LAYER_NAMES: Final = (
    "model, errors",
    "pure core",
    "edge (I/O)",
    "engine",
    "use cases, demo",
    "entry points",
)


def rank_of() -> dict[str, int]:
    return {pkg: i for i, names in enumerate(LAYERS) for pkg in names}


def packages(root: Path = ROOT) -> list[str]:
    """The packages, and the top-level modules other code imports (errors.py)."""
    found = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    found |= {p.stem for p in root.glob("*.py") if not p.stem.startswith("_")}
    return sorted(found)


def _targets(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "reconciler":
                names = [f"reconciler.{a.name}" for a in node.names]
        out.update(n.split(".")[1] for n in names if n.startswith("reconciler."))
    return {n for n in out if not n.startswith("_")}


def edges(root: Path = ROOT) -> dict[str, set[str]]:
    """Package -> the packages it imports (itself left out)."""
    out: dict[str, set[str]] = {}
    for pkg in packages(root):
        found: set[str] = set()
        single = root / f"{pkg}.py"
        for path in [single] if single.is_file() else sorted((root / pkg).rglob("*.py")):
            found |= _targets(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        out[pkg] = found - {pkg}
    return out


def upward(root: Path = ROOT) -> list[tuple[str, str]]:
    """Arrows that point up a layer or sideways within one (the violations)."""
    rank = rank_of()
    return sorted(
        (src, dst)
        for src, dsts in edges(root).items()
        for dst in dsts
        if rank.get(dst, 99) > rank.get(src, -1)
    )


def circles(root: Path = ROOT) -> list[list[str]]:
    """Package import circles (each as a path that comes back to its start)."""
    graph = edges(root)
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def mermaid(root: Path = ROOT) -> str:
    """The packages as a layered mermaid graph: top layer first, arrows downward."""
    lines = ["```mermaid", "flowchart TD"]
    present = set(packages(root))
    for i, names in reversed(list(enumerate(LAYERS))):
        shown = [n for n in names if n in present]
        if shown:
            lines.append(f'  subgraph L{i}["{LAYER_NAMES[i]}"]')
            lines.extend(f"    {n}" for n in shown)
            lines.append("  end")
    for src, dsts in sorted(edges(root).items()):
        lines.extend(f"  {src} --> {dst}" for dst in sorted(dsts))
    lines.append("```")
    return "\n".join(lines) + "\n"


def splice(text: str, block: str) -> str:
    return (
        _splice(text.replace(BEGIN, _BEGIN_R).replace(END, _END_R), block)
        .replace(_BEGIN_R, BEGIN)
        .replace(_END_R, END)
    )


_BEGIN_R = "<!-- BEGIN rollout-diagram (python -m reconciler.devtools.diagram --write) -->"
_END_R = "<!-- END rollout-diagram -->"


def main(argv: Sequence[str] | None = None) -> int:
    """Print, write or check the diagram; 1 when --check finds it stale."""
    return block_main(
        argv,
        block=mermaid,
        splice=splice,
        command="reconciler.devtools.layers",
        what="the package diagram",
    )


if __name__ == "__main__":
    raise SystemExit(main())
