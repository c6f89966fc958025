"""Hypothesis strategies for payloads: nested maps of JSON values, with secret references."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# A small key space, so that two payloads drawn independently share many keys.
keys = st.sampled_from(["model", "max_tokens", "retry", "tools", "a", "b", "c.d", "é"])
secret_refs = st.builds(lambda n: {"secret": n}, st.sampled_from(["api_key", "kb_token", "other"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "x", "y", "line 1\nline 2\n", "0"]),
)


def _children(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(keys, inner, max_size=4),
        secret_refs,
    )


values = st.recursive(scalars, _children, max_leaves=12)
payloads = st.dictionaries(keys, values, max_size=6)
