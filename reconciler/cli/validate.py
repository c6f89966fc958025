"""`reconcile validate`: every error in the repo, one line each, with file:line:col and the rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Exit, Format, RepoOpt, err, format_option, out, pick_format

FORMATS = (Format.text, Format.json, Format.github)


def validate(
    repo: RepoOpt = Path(),
    fmt: Annotated[str, format_option(*FORMATS)] = "text",
) -> None:
    """Check the config repo: YAML safety, shapes, the payload schema, cross-file rules.

    Prints every error as `file:line:col: error[RULE]: message` (rules: docs/rules.md)
    and exits 1 when there is any; exits 0 when the repo is valid. `--format github`
    prints each error as a GitHub workflow command, `::error file=PATH,line=L,col=C,
    title=RULE::message` (PATH relative to the git repository's root, as the pull
    request names it), so it shows on the line of the pull request, then a summary line.

    \b
    Examples:  reconcile validate --repo fleet-config-example
               reconcile validate --format github
    """
    from reconciler.app.validate import ValidateRequest, git_root_prefix
    from reconciler.app.validate import validate as run_validate

    format = pick_format(fmt, "validate", *FORMATS)
    prefix = git_root_prefix(repo) if format is Format.github else None
    done = run_validate(ValidateRequest(repo, prefix))
    loaded = done.repo
    if loaded is None:
        if format is Format.github:
            from reconciler.report.annotations import error_line, summary_line

            for e in done.errors:
                w = e.where
                out.print(error_line(w.file, w.line, w.column, e.rule, e.message), markup=False)
            out.print(summary_line(len(done.errors), len({e.where.file for e in done.errors})),
                      markup=False)  # fmt: skip
            raise typer.Exit(Exit.ERROR)
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
    if format is Format.github:
        out.print(summary_line_ok(len(loaded.agents)), markup=False)
        return
    if format is Format.json:
        out.print_json(json.dumps({"valid": True, "errors": [], "agents": len(loaded.agents)}))
    else:
        err.print(
            f"ok: {len(loaded.agents)} agents in {len(loaded.shards)} shards and "
            f"{len(loaded.tiers)} tiers, fleet {loaded.fleet.fleet_id}",
            markup=False,
        )


def summary_line_ok(agents: int) -> str:
    from reconciler.report.annotations import summary_line

    return f"{summary_line(0, 0)} ({agents} agents)"
