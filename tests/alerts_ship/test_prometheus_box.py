"""fleet.yaml `prometheus:` validation, and the pure parts of the rules step: the plan's
rules step, the manifest, and the check of what Prometheus reports as loaded."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

import pytest

from reconciler.alerts import compile_alerts
from reconciler.config.errors import ConfigErrors
from reconciler.config.repo import load_repo
from reconciler.diff import diff_repos
from reconciler.engine.alertmanager import hide, marked, resolve
from reconciler.engine.rules import (
    Manifest,
    RulesLive,
    RulesTarget,
    _mismatch,
    rules_step,
)
from reconciler.model.box import BoxPaths
from reconciler.repo import read_work_tree
from reconciler.transport.promrules import LoadedAlert, LoadedGroup, parse_alerts, parse_groups

EXAMPLE = Path(__file__).resolve().parents[2] / "fleet-config-example"
GOOD = (
    "prometheus:\n  host: prom.internal\n  rules_dir: {dir}\n  url: {url}\n  known_hosts: {known}\n"
)


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dict(read_work_tree(EXAMPLE))


def _errors(
    files: dict[str, bytes],
    dir: str = "/etc/agent/prometheus/rules",
    url: str = "http://prom.internal:9090",
    known: str = "/etc/ssh/known",
) -> list[str]:
    block = GOOD.format(dir=dir, url=url, known=known).encode()
    try:
        load_repo({**files, "fleet.yaml": files["fleet.yaml"] + b"\n" + block})
    except ConfigErrors as exc:
        return [str(e) for e in exc.errors]
    return []


def test_a_prometheus_box_under_the_allowed_paths_is_valid(files: dict[str, bytes]) -> None:
    assert _errors(files) == []


def test_naming_or_changing_the_prometheus_box_is_an_access_change(
    files: dict[str, bytes],
) -> None:
    """It says where reconciler connects and writes: reviewed as [access]."""
    block = GOOD.format(dir="/etc/agent/p", url="http://prom.internal:9", known="/k").encode()
    before = load_repo(files)
    after = load_repo({**files, "fleet.yaml": files["fleet.yaml"] + b"\n" + block})
    d = diff_repos(before, after)
    assert d.fleet_access and d.fleet_settings == ()
    assert all(c.dotted.startswith("prometheus") and c.access for c in d.fleet_access)


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        ({"dir": "/var/lib/prometheus/rules"}, "prometheus.path-not-allowed",
         "under none of connection.allowed_paths"),
        ({"dir": "rules"}, "prometheus.path", "is not absolute"),
        ({"dir": "/etc/agent/../etc"}, "prometheus.path", "'.' or '..'"),
        ({"url": "http://169.254.169.254/"}, "prometheus.url", "metadata"),
        ({"url": "http://other.internal:9090"}, "prometheus.url", "not the box's host"),
        ({"url": "prom.internal:9090"}, "prometheus.url", "not an http"),
        ({"known": "known_hosts"}, "connection.known-hosts-in-repo", "read from the repo"),
    ],
)  # fmt: skip
def test_a_broken_prometheus_block_names_the_line_and_rule(
    files: dict[str, bytes], change: dict[str, str], rule: str, words: str
) -> None:
    errors = _errors(files, **change)
    assert len(errors) == 1, errors
    line = files["fleet.yaml"].count(b"\n") + 2  # the block's first line
    assert errors[0].startswith("fleet.yaml:"), errors
    assert int(errors[0].split(":")[1]) > line, errors  # a line inside the block
    assert f"error[{rule}]" in errors[0] and words in errors[0], errors


TARGET = RulesTarget("acme", {"acme-a.rules.yml": b"groups: []\n"}, {"reconciler/acme/a": "1111"})


def test_the_rules_step_is_none_only_when_manifest_and_stamp_match() -> None:
    manifest = TARGET.manifest()
    step = rules_step("p", TARGET, RulesLive(None, None))
    assert step is not None and step.pre_sha is None and step.files == ("acme-a.rules.yml",)
    sha = sha256(manifest).hexdigest()
    assert rules_step("p", TARGET, RulesLive(manifest, sha)) is None
    assert rules_step("p", TARGET, RulesLive(manifest, None)) is not None  # never stamped
    old = RulesTarget("acme", {"acme-b.rules.yml": b"x"}, {"reconciler/acme/b": "2"})
    moved = rules_step("p", TARGET, RulesLive(old.manifest(), None))
    assert moved is not None and moved.removed == ("acme-b.rules.yml",)


def test_a_manifest_never_names_a_file_outside_the_rules_dir() -> None:
    doc = (
        b'{"files": {"../../etc/passwd.rules.yml": "x", ".hidden.rules.yml": "x",'
        b' "a/b.rules.yml": "x", "notes.txt": "x", "ok.rules.yml": "y"}, "groups": {}}'
    )
    assert Manifest.parse(doc).files == {"ok.rules.yml": "y"}
    assert Manifest.parse(b"not json") == Manifest()
    assert Manifest.parse(None) == Manifest()


def test_the_box_files_of_the_manifest_are_dotfiles_prometheus_never_reads() -> None:
    paths = BoxPaths.of("/r/.reconciler-acme.rules.json")
    for p in (paths.config, paths.stamp, paths.lease_dir, paths.history_dir):
        assert p.name.startswith(".") and not p.name.endswith(".yml")


def _loaded(**groups: set[str]) -> dict[str, LoadedGroup]:
    return {n.replace("_", "/"): LoadedGroup(n, "f", frozenset(h)) for n, h in groups.items()}


def test_loaded_means_every_group_with_its_hash_and_no_stale_group_of_ours() -> None:
    ok = _loaded(reconciler_acme_a={"1111"}, other_team={"zz"}, reconciler_acmex_b={"9"})
    assert _mismatch(TARGET, ok) is None  # others' groups, and another fleet's, left alone
    assert "not loaded" in str(_mismatch(TARGET, {}))
    old = _mismatch(TARGET, _loaded(reconciler_acme_a={"0000"}))
    assert old is not None and "hash 0000, not 1111" in old
    stale = _mismatch(TARGET, _loaded(reconciler_acme_a={"1111"}, reconciler_acme_b={"2"}))
    assert stale is not None and "reconciler/acme/b" in stale


def test_parse_groups_reads_the_hash_labels_of_the_api_answer() -> None:
    doc = {"status": "success", "data": {"groups": [
        {"name": "g", "file": "/r/x.yml", "rules": [
            {"labels": {"reconciler_group_hash": "ab"}}, {"labels": {}}, {}]},
        {"file": "no name"}, "junk",
    ]}}  # fmt: skip
    assert parse_groups(doc, "reconciler_group_hash") == {
        "g": LoadedGroup("g", "/r/x.yml", frozenset({"ab"}))
    }
    assert parse_groups({"data": None}, "x") == {}


AM = "alertmanager:\n  host: am.internal\n  config_path: {path}\n  url: {url}\n"


@pytest.mark.parametrize(
    ("path", "url", "rule"),
    [
        ("/etc/agent/am/alertmanager.yml", "http://am.internal:9093", None),
        ("/etc/alertmanager/alertmanager.yml", "http://am.internal:9093",
         "alertmanager.path-not-allowed"),
        ("etc/agent/am.yml", "http://am.internal:9093", "alertmanager.path"),
        ("/etc/agent/am.yml", "http://169.254.169.254/", "alertmanager.url"),
    ],
)  # fmt: skip
def test_the_alertmanager_block_is_checked_as_the_prometheus_one(
    files: dict[str, bytes], path: str, url: str, rule: str | None
) -> None:
    block = AM.format(path=path, url=url).encode()
    try:
        load_repo({**files, "fleet.yaml": files["fleet.yaml"] + b"\n" + block})
    except ConfigErrors as exc:
        got = [(e.rule, str(e)) for e in exc.errors]
        assert rule is not None and [r for r, _ in got] == [rule], got
        assert "fleet.yaml:" in got[0][1] and "alertmanager." in got[0][1], got
        return
    assert rule is None


def test_the_shipped_alertmanager_yml_ends_with_an_inert_marker_receiver() -> None:
    """The marker is the rendered file's hash (secrets not resolved), on a receiver no route
    names; values are resolved only into the shipped bytes; secret text is hidden."""
    repo = load_repo(dict(read_work_tree(EXAMPLE)))
    compiled = compile_alerts(repo)
    target = marked(compiled.alertmanager, compiled.secrets)
    digest = sha256(compiled.alertmanager).hexdigest()[:16]
    assert target.marker == f"reconciler-sha256-{digest}"
    assert target.text == compiled.alertmanager + f'- name: "{target.marker}"\n'.encode()
    values = {n: f"https://hooks.example/{n}-canary" for n in compiled.secrets}
    shipped = resolve(target, values)
    assert all(v.encode() in shipped for v in values.values())
    assert b"reconciler-secret.invalid" not in shipped
    said = f"bad URL {values['cost_webhook_url']}"
    assert hide(said, values) == "bad URL <secret>"


def test_parse_alerts_keeps_our_groups_alerts_with_the_group_hash() -> None:
    doc = {"data": {"groups": [
        {"name": "reconciler/f/health", "rules": [
            {"type": "recording", "name": "reconciler_group_info", "query": "vector(1)",
             "labels": {"reconciler_group_hash": "abc"}},
            {"type": "alerting", "name": "Down", "query": "up == 0", "labels": {}},
        ]},
        {"name": "someone-else", "rules": [{"type": "alerting", "name": "X", "query": "1"}]},
    ]}}  # fmt: skip
    got = parse_alerts(doc, "reconciler/f/", "reconciler_group_hash")
    assert got == {"Down": LoadedAlert("up == 0", "reconciler/f/health", "abc")}
    assert parse_alerts({"data": None}, "reconciler/f/", "h") == {}
