"""Journeys: `reconcile` run as a subprocess, as an operator runs it, against `demo up` fleets.

Every fleet here is started by `reconcile demo up` in a tmp dir and stopped by `reconcile
demo down` when its module (or test) is done, failed or not. The demo repo's own fleet.yaml
is used as it is: gates on, the demo's 5 s soak, 15 s inconclusive wait and 3 s stall
window. Every apply gets an explicit `--state-dir` in tmp, so nothing touches
~/.local/state. The helpers live in reconciler/testing/journeys.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.testing.journeys import reconcile_bin


@pytest.fixture(scope="session", autouse=True)
def reconcile_installed() -> Path:
    """The `reconcile` console script; every journey fails, saying to run scripts/setup, without."""
    return reconcile_bin()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An explicit --state-dir for the test's applies (journal, lock, incidents)."""
    return tmp_path / "state"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (rep_setup, rep_call), for `fleets`."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def fleets(pool, request):
    """The module's FleetPool (a module fixture named `pool`); a failed test's fleet is replaced."""
    yield pool
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.passed:
        pool.discard()
