"""Health reads per box in a wave with no metric gates: verify, watch, the soak's passes —
and no extra pass for the gates' watchdog check right after the soak's last one (issue 19:
"after the wave, a second health pass runs even with no gates configured").

A unit test on the fake transport: no metric gates and soak 0 on purpose, so the count is
the watchdog's reads alone."""

from __future__ import annotations

from .helpers import make_fleet


async def test_the_gates_watchdog_check_reuses_the_soaks_last_pass() -> None:
    fleet = make_fleet(3, waves=("100%",), soak_s=0.0, gates=())
    result = await fleet.run()
    assert result.exit_code == 0, result
    for name, box in fleet.boxes.items():
        reads = sum(1 for op, _ in box.log if op == "health")
        # verify, watch, the soak's one pass (the box works at once); none for the gates'
        # check (it was 4)
        assert reads == 3, f"{name}: {reads} health reads: {box.log}"
    passes = fleet.notes("gates.passed")
    assert passes and passes[-1]["figures"][0]["gate"] == "watchdog"
