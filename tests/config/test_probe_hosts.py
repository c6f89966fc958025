"""`reconcile validate` checks health_url and metrics_url hosts by the rule the HTTP edge
applies at run time (model.fleet.probe_host_refusal): the agent's own host, or one listed
in connection.allowed_probe_hosts; never a link-local or cloud metadata address."""

from __future__ import annotations

import pytest
from diff.conftest import tiny_files

from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import load_repo
from reconciler.config.validate import url_host
from reconciler.model.fleet import probe_host_refusal
from reconciler.transport.http import probe_refusal

FLEET = b"fleet_id: lab\nconnection:\n  allowed_paths: [/etc/agent]\n"


def _errors(files: dict[str, bytes]) -> list[str]:
    try:
        load_repo(files)
    except ConfigErrors as exc:
        return [f"{e.rule}: {e}" for e in exc.errors]
    return []


def _with(url_line: str, fleet: bytes = FLEET) -> dict[str, bytes]:
    files = dict(tiny_files(agents=2))
    files["fleet.yaml"] = fleet
    files["agents/_base.yaml"] = files["agents/_base.yaml"].replace(
        b"config_path:", f"{url_line}\nconfig_path:".encode(), 1
    )
    return files


def test_own_host_passes() -> None:
    assert _errors(_with('health_url: "http://{host}:9464/healthz"')) == []


def test_another_host_is_an_error_naming_the_setting_and_the_agents() -> None:
    errors = _errors(_with('metrics_url: "http://10.1.2.3:9100/metrics"'))
    assert len(errors) == 1, errors
    (e,) = errors
    assert e.startswith("connection.probe-host: agents/_base.yaml:1:")
    assert "connection.allowed_probe_hosts" in e and "lab-fast-001 and 1 more" in e


def test_a_listed_host_passes() -> None:
    fleet = FLEET.replace(b"  allowed_paths", b"  allowed_probe_hosts: [10.1.2.3]\n  allowed_paths")
    assert _errors(_with('metrics_url: "http://10.1.2.3:9100/metrics"', fleet)) == []


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "metadata.google.internal", "[fe80::1]", "[::ffff:169.254.1.1]"]
)
def test_link_local_and_metadata_are_always_errors(host: str) -> None:
    errors = _errors(_with(f'health_url: "http://{host}/healthz"'))
    assert len(errors) == 1 and "never probed" in errors[0], errors


@pytest.mark.parametrize(
    ("url", "own", "allowed"),
    [
        ("http://10.1.2.3/m", "10.9.9.9", ()),
        ("http://10.1.2.3/m", "10.9.9.9", ("10.1.2.3",)),
        ("http://169.254.169.254/m", "169.254.169.254", ("169.254.169.254",)),
        ("http://Box.Example./m", "box.example", ()),
    ],
)
def test_validate_and_the_http_edge_agree(url: str, own: str, allowed: tuple[str, ...]) -> None:
    """One rule: what validate calls an error, the edge refuses, and the other way round."""
    host = url_host(url)
    assert host is not None
    assert (probe_host_refusal(host, own, allowed) is None) == (
        probe_refusal(url, own, allowed) is None
    )
