"""reconcile render: the exact bytes an agent's box will get."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.common import RepoOpt, fail, load_or_exit


class RenderFormat(enum.StrEnum):
    yaml = "yaml"
    json = "json"


def render(
    agent: Annotated[str, typer.Argument(help="The agent's name, as in its shard file.")],
    repo: RepoOpt = Path(),
    format: Annotated[
        RenderFormat, typer.Option("--format", help="yaml (the bytes written) or json.")
    ] = RenderFormat.yaml,
    sha: Annotated[
        bool, typer.Option("--sha", help="Print only the sha256 of the rendered bytes.")
    ] = False,
) -> None:
    """Print the rendered config payload of AGENT, byte for byte as the box gets it.

    Example:  reconcile render us-east-fast-001 --repo fleet-config-example --sha
    """
    from reconciler.render import render_payload, sha256_hex

    loaded = load_or_exit(repo)
    if agent not in loaded.agents:
        fail(f"no agent {agent!r} in {repo}; `reconcile agents --repo {repo}` lists them")
    payload = loaded.agents[agent].agent.config
    data = render_payload(payload)
    if sha:
        sys.stdout.write(sha256_hex(data) + "\n")
    elif format is RenderFormat.json:
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.buffer.write(data)
    sys.stdout.flush()
