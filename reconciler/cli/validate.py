"""`reconcile validate`: every error in the repo, one line each, with file:line:col and the rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, fail, out

FORMATS = (Format.text, Format.json)  # the formats validate prints; others are refused


def validate(
    repo: RepoOpt = Path(),
    format: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
) -> None:
    """Check the config repo: YAML safety, shapes, the payload schema, cross-file rules.

    Prints every error as `file:line:col: error[RULE]: message` (rules: docs/rules.md)
    and exits 1 when there is any; exits 0 when the repo is valid. Formats: text, json.

    Example:  reconcile validate --repo fleet-config-example
    """
    from reconciler.app.validate import ValidateRequest
    from reconciler.app.validate import validate as run_validate

    if format not in FORMATS:
        fail(f"validate: --format {format} is not accepted here; use one of: text, json")

    done = run_validate(ValidateRequest(repo))
    loaded = done.repo
    if loaded is None:
        if format is Format.json:
            items = [
                {"file": e.where.file, "line": e.where.line, "column": e.where.column,
                 "rule": e.rule, "message": e.message}
                for e in done.errors
            ]  # fmt: skip
            out.print_json(json.dumps({"valid": False, "errors": items}))
        else:
            for e in done.errors:
                out.print(str(e), markup=False)
        err.print(f"{len(done.errors)} error(s)", markup=False)
        raise typer.Exit(Exit.ERROR)
    if format is Format.json:
        out.print_json(json.dumps({"valid": True, "errors": [], "agents": len(loaded.agents)}))
    else:
        err.print(
            f"ok: {len(loaded.agents)} agents in {len(loaded.shards)} shards and "
            f"{len(loaded.tiers)} tiers, fleet {loaded.fleet.fleet_id}",
            markup=False,
        )
