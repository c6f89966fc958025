"""`apply` against a demo fleet in process: a good change, a crash on reload, idempotence."""

from __future__ import annotations

import pytest

from reconciler.demo.fleet import DemoFleet
from reconciler.rollout.phases import Outcome
from reconciler.rollout.session import prepare
from .conftest import box_truth, request, run_apply, three_waves


async def test_good_change_reaches_every_box_and_file_stamp_and_loaded_agree(
    fleet: DemoFleet,
) -> None:
    """The head commit reaches 100%; on every box file sha == stamp sha == loaded sha."""
    result, rec = await run_apply(fleet)
    assert result.outcome is Outcome.DONE, rec.notes
    changed = [n for k, f in rec.notes if k == "box.applied" for n in [f["agent"]]]
    assert changed
    for name in fleet.names:
        file_sha, stamp_sha, loaded = box_truth(fleet, name)
        assert file_sha == stamp_sha == loaded
