"""`reconcile validate` on alerts/*.yaml and fleet.yaml `alerting:`: file:line:col, rule ids,
did-you-mean; an unknown metric, a selector naming no agent, an unknown route are errors."""

from __future__ import annotations

from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import load_repo

HEAD = b"rules:\n"


def _errors(files: dict[str, bytes], alerts: bytes, fleet: bytes | None = None) -> list[str]:
    changed = {**files, "alerts/extra.yaml": HEAD + alerts}
    if fleet is not None:
        changed["fleet.yaml"] = fleet
    try:
        load_repo(changed)
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    return []


def test_the_example_is_valid(example_files: dict[str, bytes]) -> None:
    assert _errors(example_files, b"  - {name: X, metric: error_rate, above: 1}\n") == []


def test_an_unknown_metric_names_the_line_and_the_nearest_metric(
    example_files: dict[str, bytes],
) -> None:
    errors = _errors(example_files, b"  - name: X\n    metric: eror_rate\n    above: 1\n")
    assert errors == [
        "alerts/extra.yaml:3:5: error[alert.unknown-metric]: alert 'X': metric 'eror_rate' is "
        "not in the catalogue; did you mean 'error_rate'?"
    ]


def test_a_selector_naming_no_agent_is_an_error(example_files: dict[str, bytes]) -> None:
    text = (
        b"  - name: A\n    metric: error_rate\n    above: 1\n    selector: {tier: fats}\n"
        b"  - name: B\n    metric: error_rate\n    above: 1\n    selector: {shard: mars}\n"
        b"  - name: C\n    metric: error_rate\n    above: 1\n"
        b"    selector: {tier: fast, labels: {team: nobody}}\n"
    )
    errors = _errors(example_files, text)
    assert [e.split(": error")[0] for e in errors] == [
        "alerts/extra.yaml:5:16",
        "alerts/extra.yaml:9:16",
        "alerts/extra.yaml:13:5",
    ]
    assert "did you mean 'fast'?" in errors[0]
    assert all("error[alert.selector]" in e for e in errors)


def test_an_unknown_route_and_an_undeclared_route_secret_are_errors(
    example_files: dict[str, bytes],
) -> None:
    fleet = example_files["fleet.yaml"].replace(b"secret: cost_webhook_url", b"secret: cost_hook")
    errors = _errors(
        example_files, b"  - name: X\n    metric: error_rate\n    above: 1\n    route: oncal\n",
        fleet,
    )  # fmt: skip
    assert any(
        "error[alert.unknown-route]" in e and "did you mean 'oncall'?" in e for e in errors
    ), errors
    assert any(
        e.startswith("fleet.yaml:") and "error[secret.undeclared]" in e and "cost_hook" in e
        for e in errors
    ), errors


def test_conditions_must_be_whole(example_files: dict[str, bytes]) -> None:
    text = (
        b"  - name: NoBound\n    metric: error_rate\n"
        b"  - name: Mixed\n    promql: up == 0\n    metric: error_rate\n"
        b"  - name: TierLevel\n    metric: error_rate\n    above: 2\n    by: tier\n"
        b"    relative_to: tier\n"
        b"  - name: Lost\n    metric: error_rate\n    above: 2\n    by: tier\n"
        b"    selector: {shard: eu-west}\n"
        b"  - name: NoBound\n    metric: error_rate\n    below: 1\n"
    )
    rules = [e.split("error[")[1].split("]")[0] for e in _errors(example_files, text)]
    assert sorted(rules) == sorted(
        [
            "alert.condition",
            "alert.condition",
            "alert.relative-to",
            "alert.selector",
            "alert.duplicate-name",
        ]
    )


def test_a_shape_error_is_reported_with_its_line(example_files: dict[str, bytes]) -> None:
    errors = _errors(example_files, b"  - name: X\n    metric: error_rate\n    abov: 1\n")
    assert len(errors) == 1
    assert errors[0].startswith("alerts/extra.yaml:4:5: error[schema.unknown-key]")
    assert "did you mean 'above'?" in errors[0]
