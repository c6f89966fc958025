"""Hypothesis strategies for config maps, layers and payloads, in one place (as attrs does).

Keys come from a small alphabet so that layers collide on the same paths often;
`st.recursive` builds the nesting. Layer maps may hold null (a delete); payloads
are any JSON-like value that YAML can carry.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Few, short keys: layers written independently still touch the same paths.
keys = st.sampled_from(["a", "b", "c", "d", "model", "retry", "tags"])

leaf_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="xyz 01-:#", max_size=6),
)
leaf_lists = st.lists(leaf_scalars, max_size=3)
leaves = st.one_of(leaf_scalars, leaf_lists)


def layer_maps(*, nulls: bool = True, max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    """A layer's map: nested maps of scalars and lists, with nulls (deletes) when asked."""
    values: st.SearchStrategy[Any] = st.one_of(leaves, st.none()) if nulls else leaves
    nested = st.recursive(
        values,
        lambda inner: st.dictionaries(keys, inner, max_size=4),
        max_leaves=max_leaves,
    )
    return st.dictionaries(keys, nested, max_size=5)


def layer_stacks(
    *, min_size: int = 1, max_size: int = 4, nulls: bool = True
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Layers as base < tier < shard < agent would give them: a list of maps, lowest first."""
    return st.lists(layer_maps(nulls=nulls), min_size=min_size, max_size=max_size)


# Any text YAML can carry: the emitter must quote, escape or block it correctly.
yaml_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\x00",
    ),
    max_size=20,
)
tricky_text = st.one_of(
    yaml_text,
    st.sampled_from(
        [
            "no",
            "on",
            "yes",
            "null",
            "~",
            "true",
            "0755",
            "0o17",
            "1e3",
            ".inf",
            "-",
            "?",
            "- x",
            "a: b",
            "a #b",
            "#",
            "&a",
            "*a",
            "!tag",
            "%x",
            "@x",
            "`x",
            "'",
            '"',
            "",
            " lead",
            "trail ",
            "line\nbreak",
            "ends\n",
            "\n",
            "x\n\n",
            "tab\tx",
            "\u2028",
            "\ufeffbom",
            "\x85",
            "{}",
            "[]",
            "25%",
            "2024-01-01",
            "1_000",
            "12:30",
        ]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    tricky_text,
)


def payloads(max_leaves: int = 20) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON-like payload: maps with string keys, lists, and any scalar."""
    values = st.recursive(
        json_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(tricky_text, inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )
    return st.dictionaries(tricky_text, values, max_size=5)
