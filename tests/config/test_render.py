"""Canonical rendering: byte-stable golden files, and a round trip for any JSON-like payload."""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from ruamel.yaml import YAML
from strategies import payloads

from reconciler.config.load import load_yaml
from reconciler.config.repo import Repo, load_repo
from reconciler.render import RENDERER_VERSION, render_payload, sha256_hex
from reconciler.repo import read_work_tree

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLE = ROOT / "fleet-config-example"
# One agent per story: plain fast, agent override, agent null-delete, batch deep merge.
GOLDEN_AGENTS = ["us-east-fast-001", "us-east-smart-002", "eu-west-fast-003", "ap-south-batch-001"]
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def example() -> Repo:
    return load_repo(read_work_tree(EXAMPLE), "fleet-config-example/")


def check_golden(name: str, data: bytes) -> None:
    """Compare with tests/golden/NAME byte for byte (RECONCILER_UPDATE_GOLDEN=1 rewrites)."""
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(data)
    assert path.read_bytes() == data, (
        f"{name}: rendered bytes changed; if on purpose, bump RENDERER_VERSION "
        "and rerun with RECONCILER_UPDATE_GOLDEN=1"
    )


class TestGolden:
    def test_renderer_version_is_the_one_the_golden_files_were_made_with(self) -> None:
        """Changing the bytes needs a new RENDERER_VERSION and new golden files, together."""
        assert RENDERER_VERSION == "2"

    @pytest.mark.parametrize("agent", GOLDEN_AGENTS)
    def test_example_agent_renders_to_its_golden_bytes(self, example: Repo, agent: str) -> None:
        """The example repo's agents render exactly as their golden files."""
        check_golden(f"{agent}.yaml", render_payload(example.agents[agent].agent.config))

    def test_tricky_payload_renders_to_its_golden_bytes(self) -> None:
        """Strings that need quotes, blocks and escapes; numbers; empty containers."""
        payload = json.loads((GOLDEN / "tricky-payload.json").read_text(encoding="utf-8"))
        data = render_payload(payload)
        check_golden("tricky-payload.yaml", data)
        assert load_yaml("tricky-payload.yaml", data).value == payload

    def test_the_sha_is_of_the_rendered_bytes(self, example: Repo) -> None:
        """sha256_hex is the plain sha256 of exactly what the box gets."""
        data = render_payload(example.agents["us-east-fast-001"].agent.config)
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
        assert data.endswith(b"\n")
        assert not data.endswith(b"\n\n")


def read_as_yaml_1_1(data: bytes) -> Any:
    """What a YAML 1.1 reader (PyYAML's dialect) makes of the bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return YAML(typ="safe", pure=True).load("%YAML 1.1\n---\n" + data.decode("utf-8"))


class TestRoundTrip:
    @SETTINGS
    @given(payloads())
    def test_any_payload_reads_back_as_itself(self, payload: dict[str, Any]) -> None:
        """load_yaml(render_payload(p)).value == p, and rendering twice gives the same bytes."""
        data = render_payload(payload)
        loaded = load_yaml("r.yaml", data).value
        assert (loaded if payload else {}) == payload
        assert render_payload(payload) == data

    @SETTINGS
    @given(payloads())
    def test_a_yaml_1_1_reader_reads_the_same_payload(self, payload: dict[str, Any]) -> None:
        """no, on, 1_000, 2024-01-01, 1e+100 are quoted or spelled so YAML 1.1 agrees."""
        assert read_as_yaml_1_1(render_payload(payload)) == payload

    def test_key_order_is_the_payloads_own(self) -> None:
        """Keys are written in the payload's order, not sorted."""
        assert render_payload({"b": 1, "a": 2}) == b"b: 1\na: 2\n"

    def test_special_floats_round_trip(self) -> None:
        """inf, -inf and nan are .inf, -.inf and .nan."""
        data = render_payload({"a": math.inf, "b": -math.inf, "c": math.nan})
        assert data == b"a: .inf\nb: -.inf\nc: .nan\n"
        value = load_yaml("r.yaml", data).value
        assert value["a"] == math.inf
        assert math.isnan(value["c"])

    def test_empty_payload_is_an_empty_map(self) -> None:
        """{} renders as `{}` and reads back as an empty map."""
        assert render_payload({}) == b"{}\n"
        assert load_yaml("r.yaml", b"{}\n").value == {}

    @pytest.mark.parametrize("bad", [{1: "a"}, {"a": {1, 2}}, {"a": b"x"}], ids=repr)
    def test_values_yaml_cannot_carry_are_refused(self, bad: dict[Any, Any]) -> None:
        """Non-string keys, sets and bytes are a TypeError, never silently written."""
        with pytest.raises(TypeError):
            render_payload(bad)
