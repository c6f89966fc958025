"""Property: a hostile pull request's repo never crashes the loader, reads beyond the repo,
or puts a secret into a message (tests/hostile.py; bench/bench_hostile_repos.py runs longer)."""

from __future__ import annotations

from hostile import HostileRepo, check, hostile_repos
from hypothesis import HealthCheck, given, settings


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_repos())
def test_hostile_repos_give_only_config_errors_and_leak_nothing(repo: HostileRepo) -> None:
    """Only ConfigErrors, nothing opened beyond the repo, no secret in any message."""
    check(repo)
