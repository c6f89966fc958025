"""compile_alerts: the catalogue, each condition kind's PromQL, group hashes, alertmanager.yml."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.alerts import (
    GROUP_HASH_LABEL,
    GROUP_INFO,
    MissingSecretError,
    compile_alerts,
    resolve_alertmanager,
    secret_placeholder,
)
from reconciler.alerts.catalogue import CATALOGUE
from reconciler.alerts.compile import alert_expr
from reconciler.config.repo import Repo
from reconciler.model.fleet import ALERT_METRICS, AlertRule, AlertsFile


def _rule(**kw: object) -> AlertRule:
    return AlertRule.model_validate({"name": "A", **kw})


def test_the_catalogue_compiles_every_metric_the_model_accepts() -> None:
    assert tuple(CATALOGUE) == ALERT_METRICS


def test_a_value_condition_compares_the_recorded_series() -> None:
    rule = _rule(metric="error_rate", above=0.03, by="tier", selector={"tier": "fast"})
    assert alert_expr(rule, "5m") == 'tier:error_rate:rate5m{tier="fast"} > 0.03'
    assert alert_expr(_rule(metric="throughput", below=0.5), "2m") == (
        "agent:throughput:rate2m < 0.5"
    )


def test_a_rolling_window_condition_is_a_ratio_to_the_recorded_series_average() -> None:
    rule = _rule(metric="tokens_per_minute", above=1.3, relative_to={"average_over": "7d"})
    assert alert_expr(rule, "5m") == (
        "agent:tokens_per_minute:rate5m > 1.3 * avg_over_time(agent:tokens_per_minute:rate5m[7d])"
    )


def test_a_tier_condition_compares_each_agent_with_its_tier() -> None:
    rule = _rule(metric="latency_p95", above=2, relative_to="tier", selector={"shard": "eu"})
    assert alert_expr(rule, "5m") == (
        'agent:latency_p95:rate5m{shard="eu"} > on (tier) group_left () '
        "(2 * tier:latency_p95:rate5m)"
    )


def test_raw_promql_is_kept_as_written_on_one_line() -> None:
    assert alert_expr(_rule(promql="up\n  == 0"), "5m") == "up == 0"


def test_the_same_repo_compiles_to_the_same_bytes(example_repo: Repo) -> None:
    one, two = compile_alerts(example_repo), compile_alerts(example_repo)
    assert one == two
    assert set(one.rule_files) == {
        "acme-support-recording.rules.yml",
        "acme-support-cost.rules.yml",
        "acme-support-health.rules.yml",
    }


def test_each_group_carries_its_content_hash_and_only_a_changed_group_changes_it(
    example_repo: Repo,
) -> None:
    before = compile_alerts(example_repo)
    for name, data in before.rule_files.items():
        text = data.decode()
        (group,) = [g for g in before.groups if f'"{g}"' in text]
        assert f'record: "{GROUP_INFO}"' in text
        assert f'{GROUP_HASH_LABEL}: "{before.groups[group]}"' in text, name
    health = example_repo.alerts["alerts/health.yaml"]
    first = health.rules[0].model_copy(update={"above": 0.05})
    alerts = {
        **example_repo.alerts,
        "alerts/health.yaml": AlertsFile(rules=[first, *health.rules[1:]]),
    }
    after = compile_alerts(dataclasses.replace(example_repo, alerts=alerts))
    changed = {g for g in before.groups if before.groups[g] != after.groups[g]}
    assert changed == {"reconciler/acme-support/health"}
    assert after.expressions["TierErrorRateHigh"] == "tier:error_rate:rate5m > 0.05"


def test_alertmanager_has_placeholders_until_resolved(example_repo: Repo) -> None:
    compiled = compile_alerts(example_repo)
    text = compiled.alertmanager.decode()
    assert compiled.secrets == {"oncall_slack_url", "cost_webhook_url"}
    assert secret_placeholder("cost_webhook_url") in text
    assert 'matchers:\n    - "route=\\"cost\\""' in text
    values = {
        "oncall_slack_url": "https://hooks.slack.test/T1/B2/x",
        "cost_webhook_url": "http://127.0.0.1:1/c",
    }
    resolved = resolve_alertmanager(compiled.alertmanager, compiled.secrets, values).decode()
    assert "reconciler-secret.invalid" not in resolved
    assert '"https://hooks.slack.test/T1/B2/x"' in resolved
    with pytest.raises(MissingSecretError, match="cost_webhook_url") as caught:
        resolve_alertmanager(compiled.alertmanager, compiled.secrets, {"oncall_slack_url": "v"})
    assert "https://hooks" not in str(caught.value)


def test_without_routes_every_alert_goes_to_an_empty_receiver(example_repo: Repo) -> None:
    fleet = example_repo.fleet.model_copy(
        update={
            "alerting": example_repo.fleet.alerting.model_copy(
                update={"routes": [], "default_route": None}
            )
        }
    )
    compiled = compile_alerts(dataclasses.replace(example_repo, fleet=fleet))
    assert compiled.secrets == frozenset()
    assert b'receiver: "none"' in compiled.alertmanager
    assert b"route:" in compiled.alertmanager
    health = compiled.rule_files["acme-support-health.rules.yml"].decode()
    assert '      route: "' not in health
