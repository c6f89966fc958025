"""reconcile explain: why an agent has the value it has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.common import (
    Format,
    RepoOpt,
    fail,
    format_option,
    load_or_exit,
    out,
    pick_format,
)

if TYPE_CHECKING:
    from reconciler.config.layer import FieldPath, Setting


def _value(value: Any) -> str:
    """A value as YAML would read it back: strings bare unless they would read as another type."""
    from reconciler.config.load import plain_value

    if isinstance(value, str) and value and plain_value(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _chain(chain: tuple[Setting, ...]) -> str:
    from reconciler.config.provenance import short

    if not chain:
        return "(default)"
    win, *rest = reversed(chain)
    text = ("removed at " if win.deleted else "") + short(win)
    if rest:
        text += ", overrides " + ", ".join(
            ("removed at " if s.deleted else "") + short(s) for s in rest
        )
    return f"({text})"


def _line(path: FieldPath, present: bool, value: Any, chain: tuple[Setting, ...]) -> str:
    name = ".".join(path)
    if not present:
        return f"{name}: not set  {_chain(chain)}"
    return f"{name} = {_value(value)}  {_chain(chain)}"


def explain(
    agent: Annotated[str, typer.Argument(help="The agent's name.")],
    field: Annotated[
        str, typer.Argument(help="A dotted field: model, config.retry.max_attempts, user ...")
    ],
    repo: RepoOpt = Path(),
    format_name: Annotated[str, format_option(Format.text, Format.json)] = "text",
) -> None:
    """Show FIELD's value for AGENT and the file:line chain that set and overrode it.

    A bare payload field (model) is looked up under config. A map shows each leaf.

    Example:  reconcile explain eu-west-fast-003 model --repo fleet-config-example
    """
    format = pick_format(format_name, "explain", Format.text, Format.json)
    from reconciler.config.provenance import explain as explain_field
    from reconciler.config.provenance import resolve_field

    loaded = load_or_exit(repo)
    if agent not in loaded.agents:
        fail(f"no agent {agent!r} in {repo}; `reconcile agents --repo {repo}` lists them")
    ea = loaded.agents[agent]
    path = resolve_field(ea, field)
    if path is None:
        keys = ", ".join(sorted(ea.agent.config))
        fail(f"agent {agent!r} has no field {field!r}; its payload fields are: {keys}")
    ex = explain_field(ea, path)
    if format is Format.json:
        doc = {
            "agent": agent,
            "field": ".".join(path),
            "present": ex.present,
            "value": ex.value,
            "chain": [
                {
                    "file": s.span.file if s.span else None,
                    "line": s.span.line if s.span else None,
                    "layer": s.layer,
                    "removed": s.deleted,
                }
                for s in ex.chain
            ],
        }
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    if ex.present and isinstance(ex.value, dict) and ex.value:
        out.print(f"{'.'.join(path)}  {_chain(ex.chain)}", markup=False)
        for leaf, chain in sorted(ex.leaves.items()):
            sub = ex.value
            present = True
            for part in leaf[len(path) :]:
                if isinstance(sub, dict) and part in sub:
                    sub = sub[part]
                else:
                    present = False
                    break
            if present and isinstance(sub, dict):
                continue
            out.print("  " + _line(leaf, present, sub, chain), markup=False)
        return
    out.print(_line(path, ex.present, ex.value, ex.chain), markup=False)
