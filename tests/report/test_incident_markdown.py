"""The incident's Markdown headline stays readable for a 1,000-box wave (the JSON keeps all)."""

from __future__ import annotations

from reconciler.report.incident import WAVE_NAMES_SHOWN, _some


def test_a_big_failing_wave_shows_its_first_names_and_how_many_more() -> None:
    names = [f"agent-{i:04d}" for i in range(1000)]
    text = _some(names)
    assert text.startswith("agent-0000, agent-0001")
    assert text.endswith(f"and {1000 - WAVE_NAMES_SHOWN} more")
    assert "agent-0012" not in text


def test_a_small_wave_shows_every_name() -> None:
    assert _some(["a", "b"]) == "a, b"
