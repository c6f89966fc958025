"""`reconcile alerts render/test`: alerts/*.yaml compiled, and checked with promtool and amtool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import Exit, RepoOpt, err, out

alerts_app = typer.Typer(
    help=(
        "Alert rules as code: compile alerts/*.yaml to Prometheus rule files and "
        "alertmanager.yml (render), check them and run their promtool unit tests (test).\n\n"
        "Example:  reconcile alerts test --repo fleet-config-example"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@alerts_app.command("render")
def render(
    repo: RepoOpt = Path(),
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Directory to write the files to (created if missing)."),
    ] = Path("rendered-alerts"),
) -> None:
    """Write the compiled rule files and alertmanager.yml (mode 0600) to --out.

    One rule file per alerts file plus one of recording rules for the derived metrics;
    each group's first rule, reconciler_group_info, carries the group's content hash
    (label reconciler_group_hash). Secret URLs
    in alertmanager.yml are placeholders: values are put in only when shipping. The same
    repo always renders the same bytes. Syntax and catalogue: docs/alerts.md.

    Example:  reconcile alerts render --repo fleet-config-example --out /tmp/rules
    """
    from reconciler.app.alerts import render_alerts

    done = render_alerts(repo, out_dir)
    for name in done.files:
        out.print(str(done.out / name), markup=False)
    for group, digest in sorted(done.groups.items()):
        err.print(f"group {group}: {digest}", markup=False)


@alerts_app.command("test")
def test(
    repo: RepoOpt = Path(),
    promtool: Annotated[
        str | None, typer.Option("--promtool", help="promtool to run (default: on PATH).")
    ] = None,
    amtool: Annotated[
        str | None, typer.Option("--amtool", help="amtool to run (default: on PATH).")
    ] = None,
) -> None:
    """Check the compiled rules and alertmanager.yml, and run the repo's promtool tests.

    Runs `promtool check rules` on the rendered rule files, `promtool test rules` with
    alerts/tests/*.yaml (their rule_files name the rendered files) and `amtool check-config` on
    alertmanager.yml. Exits 1 when any check fails, printing the tool's own output.

    Example:  reconcile alerts test --repo fleet-config-example
    """
    from reconciler.app.alerts import test_alerts

    done = test_alerts(repo, promtool, amtool)
    for run in done.runs:
        mark = "ok" if run.ok else "FAILED"
        out.print(f"{mark}: {run.command}", markup=False)
        if not run.ok and run.output:
            out.print(run.output, markup=False)
    if not done.ok:
        err.print("alert checks failed", markup=False)
        raise typer.Exit(Exit.ERROR)
    err.print(
        f"ok: rules, {len(done.test_files)} test file(s) and alertmanager.yml pass", markup=False
    )
