"""The laws of layering (base < tier < shard < agent), as Hypothesis properties.

Maps merge deeply, lists and scalars go to the last writer, null removes a key,
layers fold left from the base, and every path's provenance names the layer (and,
for real YAML, the line) that set it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import reduce
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from strategies import layer_maps, layer_stacks, leaf_lists, leaf_scalars

from reconciler.config.layer import FieldPath, Layer, fold, winner
from reconciler.config.load import load_yaml
from reconciler.render import render_payload

_MISSING = object()
# Few examples per run keep the suite fast; each run explores new ones (no fixed seed).
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def layers_of(maps: list[dict[str, Any]]) -> list[Layer]:
    return [Layer(f"L{i}", m) for i, m in enumerate(maps)]


def folded(maps: list[dict[str, Any]]) -> dict[str, Any]:
    return fold(layers_of(maps))[0]


def lookup(value: Any, path: FieldPath) -> Any:
    """The value at `path`, or _MISSING when a key is absent or a parent is not a map."""
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def paths(value: Any, prefix: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every (path, value) under a map, maps included, depth first."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key), sub
            yield from paths(sub, (*prefix, key))


def leaf_paths(value: dict[str, Any]) -> Iterator[tuple[FieldPath, Any]]:
    return ((p, v) for p, v in paths(value) if not isinstance(v, dict))


def last_writer(maps: list[dict[str, Any]], path: FieldPath) -> int | None:
    """Index of the last layer with a non-null value at `path` (None if no layer has one)."""
    found = None
    for i, m in enumerate(maps):
        v = lookup(m, path)
        if v is not _MISSING and v is not None:
            found = i
    return found


class TestIdentity:
    @SETTINGS
    @given(layer_stacks(min_size=0))
    def test_folding_an_empty_layer_changes_nothing(self, maps: list[dict[str, Any]]) -> None:
        """{} is the identity, first or last, for the value and for the provenance."""
        want = fold(layers_of(maps))
        assert fold(layers_of([{}, *maps]))[0] == want[0]
        assert fold([*layers_of(maps), Layer("empty", {})]) == want

    @SETTINGS
    @given(layer_maps(nulls=False))
    def test_one_null_free_layer_folds_to_itself(self, m: dict[str, Any]) -> None:
        """A single layer without nulls is its own effective value."""
        assert folded([m]) == m

    @SETTINGS
    @given(layer_stacks(max_size=4))
    def test_effective_value_never_holds_a_null_from_a_map(
        self, maps: list[dict[str, Any]]
    ) -> None:
        """Null deletes: no map in the result has a null value (also in maps no lower layer had)."""
        assert all(v is not None for _, v in paths(folded(maps)))


class TestLastWriter:
    @SETTINGS
    @given(layer_stacks(min_size=2))
    def test_scalar_and_list_leaves_go_to_the_last_writer(self, maps: list[dict[str, Any]]) -> None:
        """Every leaf of the top layer (not null) is in the result exactly as written."""
        result = folded(maps)
        for path, value in leaf_paths(maps[-1]):
            if value is not None:
                assert lookup(result, path) == value

    @SETTINGS
    @given(st.lists(leaf_lists, min_size=2, max_size=4))
    def test_lists_replace_never_concatenate(self, lists: list[list[Any]]) -> None:
        """A list in an upper layer replaces the lower one whole."""
        assert folded([{"tags": v} for v in lists]) == {"tags": lists[-1]}

    @SETTINGS
    @given(layer_maps(), leaf_scalars)
    def test_a_scalar_replaces_a_whole_map(self, low: dict[str, Any], scalar: Any) -> None:
        """Writing a scalar where a lower layer had a map replaces the map."""
        assert folded([{"m": low}, {"m": scalar}]) == {"m": scalar}


class TestNullDeletes:
    @SETTINGS
    @given(layer_stacks(min_size=2))
    def test_null_removes_the_key(self, maps: list[dict[str, Any]]) -> None:
        """A null in the top layer removes that path from the result, whatever was below."""
        result = folded(maps)
        for path, value in leaf_paths(maps[-1]):
            if value is None:
                assert lookup(result, path) is _MISSING

    def test_null_removes_a_whole_map_and_a_later_layer_can_set_it_again(self) -> None:
        """tier-batch's `debug: null` removes base's debug map; an agent may set it again."""
        base = {"debug": {"trace": 0.01, "level": 2}, "model": "m"}
        assert folded([base, {"debug": None}]) == {"model": "m"}
        assert folded([base, {"debug": None}, {"debug": {"trace": 1}}]) == {
            "model": "m",
            "debug": {"trace": 1},
        }


class TestDeepMerge:
    @SETTINGS
    @given(layer_maps(nulls=False), layer_maps(nulls=False))
    def test_lower_leaves_survive_unless_the_upper_layer_touches_their_path(
        self, low: dict[str, Any], up: dict[str, Any]
    ) -> None:
        """Maps merge: a lower leaf stays unless the upper layer writes it or a non-map above it."""
        result = folded([low, up])
        for path, value in leaf_paths(low):
            touched = lookup(up, path) is not _MISSING or any(
                lookup(up, path[:cut]) is not _MISSING
                and not isinstance(lookup(up, path[:cut]), dict)
                for cut in range(1, len(path))
            )
            if not touched:
                assert lookup(result, path) == value

    def test_retry_map_merges_key_by_key(self) -> None:
        """tier-batch sets retry.max_attempts; base's retry.backoff_s stays."""
        base = {"retry": {"max_attempts": 3, "backoff_s": 2}}
        assert folded([base, {"retry": {"max_attempts": 6}}]) == {
            "retry": {"max_attempts": 6, "backoff_s": 2}
        }


class TestFoldOrder:
    @SETTINGS
    @given(layer_stacks(min_size=1, max_size=5), st.integers(min_value=0, max_value=5))
    def test_folding_a_prefix_then_the_rest_equals_folding_all(
        self, maps: list[dict[str, Any]], cut: int
    ) -> None:
        """Folding left is incremental: the repo reuses a tier+shard prefix for each agent."""
        layers = layers_of(maps)
        cut = min(cut, len(layers))
        prefix_value, prefix_prov = fold(layers[:cut])
        assert fold(layers[cut:], prefix_value, prefix_prov) == fold(layers)

    def test_pre_merging_upper_layers_loses_their_nulls(self) -> None:
        """shard {debug: null} pre-merged with agent {} loses the delete; folding left keeps it."""
        base, shard, agent = {"debug": {"trace": 1}}, {"debug": None}, {"model": "m"}
        pre_merged = folded([shard, agent])
        assert folded([base, pre_merged]) == {"debug": {"trace": 1}, "model": "m"}
        assert folded([base, shard, agent]) == {"model": "m"}

    @staticmethod
    def premerged(maps: list[dict[str, Any]]) -> dict[str, Any]:
        return folded([maps[0], folded(maps[1:])])

    flat = st.lists(
        st.dictionaries(st.sampled_from("abc"), st.one_of(st.none(), st.integers(0, 3))),
        min_size=3,
        max_size=3,
    )

    @SETTINGS
    @given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers()), min_size=3, max_size=3))
    def test_without_nulls_flat_layers_may_be_pre_merged(self, maps: list[dict[str, Any]]) -> None:
        """For flat maps without nulls the order of merging does not matter."""
        assert self.premerged(maps) == folded(maps)

    def test_with_nulls_pre_merging_differs(self) -> None:
        """Hypothesis finds flat layers with a null where pre-merging gives another result."""
        example = find(
            self.flat,
            lambda maps: self.premerged(maps) != folded(maps),
            settings=settings(database=None, max_examples=2000),
        )
        assert any(v is None for m in example[1:] for v in m.values())


class TestProvenance:
    @SETTINGS
    @given(layer_stacks(min_size=1, max_size=4))
    def test_each_path_names_the_last_layer_that_set_it(self, maps: list[dict[str, Any]]) -> None:
        """Present paths: the winner is the last layer with a value there; absent: a delete."""
        value, prov = fold(layers_of(maps))
        for path, _ in paths(value):
            w = winner(prov, path)
            assert w is not None
            assert not w.deleted
            assert w.layer == f"L{last_writer(maps, path)}"
        for path in prov:
            if lookup(value, path) is _MISSING:
                w = winner(prov, path)
                assert w is not None
                assert w.deleted, f"{path} is gone but its provenance says {w}"

    @SETTINGS
    @given(layer_stacks(min_size=1, max_size=4))
    def test_inputs_are_never_mutated(self, maps: list[dict[str, Any]]) -> None:
        """fold is pure: the layer maps are the same after folding."""
        before = copy.deepcopy(maps)
        fold(layers_of(maps))
        assert maps == before

    @SETTINGS
    @given(layer_stacks(min_size=1, max_size=4))
    def test_provenance_from_real_yaml_names_file_and_line(
        self, maps: list[dict[str, Any]]
    ) -> None:
        """Layers loaded from YAML text: each leaf's winner is that file, at the key's line."""
        texts = {f"L{i}.yaml": render_payload(m).decode() for i, m in enumerate(maps)}
        docs = [load_yaml(name, text.encode()) for name, text in texts.items()]
        assert [d.value or {} for d in docs] == maps
        value, prov = fold(Layer(d.file, d.value or {}, d.loc) for d in docs)
        for path, _ in leaf_paths(value):
            w = winner(prov, path)
            assert w is not None
            assert w.span is not None
            assert w.span.file == f"L{last_writer(maps, path)}.yaml"
            line = texts[w.span.file].splitlines()[w.span.line - 1]
            assert line[w.span.column - 1 :].startswith(f"{path[-1]}:"), (path, line)


def test_the_example_fold_reads_like_the_design() -> None:
    """base < tier < shard < agent on a tiny example: merge, replace, delete, last writer."""
    base = {"model": "haiku", "tags": ["support"], "retry": {"max": 3, "backoff": 2}, "debug": {}}
    tier = {"model": "sonnet", "retry": {"max": 6}}
    shard = {"tags": ["eu"], "debug": None}
    agent = {"max_tokens": 8192}
    value, prov = fold(layers_of([base, tier, shard, agent]))
    assert value == {
        "model": "sonnet",
        "tags": ["eu"],
        "retry": {"max": 6, "backoff": 2},
        "max_tokens": 8192,
    }
    assert [s.layer for s in prov[("model",)]] == ["L0", "L1"]
    assert [(s.layer, s.deleted) for s in prov[("debug",)]] == [("L0", False), ("L2", True)]
    assert reduce(lambda acc, m: folded([acc, m]), [base, tier, shard, agent], {}) == value


@pytest.mark.parametrize("scalar", [0, False, "", []])
def test_falsy_values_are_values_not_deletes(scalar: Any) -> None:
    """Only null deletes: 0, false, "" and [] override like any other value."""
    assert folded([{"a": 5}, {"a": scalar}]) == {"a": scalar}
