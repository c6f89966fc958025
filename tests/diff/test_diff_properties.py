"""Properties of the payload diff: diff(a, a) is empty; a patched by diff(a, b) is b."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from reconciler.diff.values import diff_values, patch, same

from .strategies import payloads


@given(payloads)
def test_diff_of_a_payload_with_itself_is_empty(a: dict[str, Any]) -> None:
    """Nothing changes between a payload and itself (NaN included)."""
    assert diff_values(a, a) == []


@given(payloads, payloads)
@settings(max_examples=300)
def test_patching_a_with_diff_a_b_gives_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Applying diff(a, b) to a gives b, with types (1, 1.0 and true stay distinct)."""
    assert same(patch(a, diff_values(a, b)), b)


@given(payloads, payloads)
def test_diff_is_empty_exactly_when_payloads_are_the_same(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    """An empty diff means equal payloads, and equal payloads give an empty diff."""
    assert (diff_values(a, b) == []) == same(a, b)


@given(payloads, payloads)
def test_changes_are_sorted_and_never_nested(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Paths come sorted, and no reported path lies inside another one."""
    paths = [c.path for c in diff_values(a, b)]
    assert paths == sorted(paths)
    for p in paths:
        assert not any(p != q and p[: len(q)] == q for q in paths)
