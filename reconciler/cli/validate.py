"""reconcile validate: every error in the repo, one line each, with file:line:col and the rule."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, label_prefix, out
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import load_repo
from reconciler.repo import read_work_tree


def validate(
    repo: RepoOpt = Path(),
    format: Format = typer.Option(Format.text, "--format", help="text or json."),
) -> None:
    """Check the config repo: YAML safety, shapes, the payload schema, cross-file rules.

    Prints every error as `file:line:col: error[RULE]: message` (rules: docs/rules.md)
    and exits 1 when there is any; exits 0 when the repo is valid.

    Example:  reconcile validate --repo fleet-config-example
    """
    if not (repo / "fleet.yaml").is_file():
        err.print(f"error: {repo}: no fleet.yaml here; pass --repo DIR", markup=False)
        raise typer.Exit(Exit.ERROR)
    try:
        loaded = load_repo(read_work_tree(repo), label_prefix(repo))
    except ConfigErrors as exc:
        if format is Format.json:
            items = [
                {
                    "file": e.where.file,
                    "line": e.where.line,
                    "column": e.where.column,
                    "rule": e.rule,
                    "message": e.message,
                }
                for e in exc.errors
            ]
            out.print_json(json.dumps({"valid": False, "errors": items}))
        else:
            for e in exc.errors:
                out.print(str(e), markup=False)
        err.print(f"{len(exc.errors)} error(s)", markup=False)
        raise typer.Exit(Exit.ERROR) from None
    if format is Format.json:
        out.print_json(json.dumps({"valid": True, "errors": [], "agents": len(loaded.agents)}))
    else:
        err.print(
            f"ok: {len(loaded.agents)} agents in {len(loaded.shards)} shards and "
            f"{len(loaded.tiers)} tiers, fleet {loaded.fleet.fleet_id}",
            markup=False,
        )
