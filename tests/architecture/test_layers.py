"""Imports point one way: cli → app → engine → edge → pure core → model, with no circles.

The package graph is read from the code (reconciler/devtools/layers.py), and the
picture in docs/architecture.md is the one it draws.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.devtools.layers import LAYERS, circles, edges, main, packages, upward

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_every_package_has_a_layer() -> None:
    """A new package must be given its layer (so it cannot dodge the rule)."""
    ranked = {p for layer in LAYERS for p in layer}
    assert set(packages()) - ranked == set()


def test_no_import_points_up_a_layer() -> None:
    """No package imports one of a higher layer (the pure core never imports the edge...)."""
    assert upward() == []


def test_no_package_circles() -> None:
    assert circles() == []


def test_the_graph_is_read_from_the_code() -> None:
    """Not vacuous: the engine imports the rollout core and the transport."""
    assert {"rollout", "transport"} <= edges()["engine"]


def test_architecture_doc_shows_the_current_picture() -> None:
    """docs/architecture.md holds what `python -m reconciler.devtools.layers` draws."""
    assert main(["--check", str(DOC)]) == 0, "run: python -m reconciler.devtools.layers --write"
