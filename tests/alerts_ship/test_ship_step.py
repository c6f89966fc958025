"""The rules step's edge cases on a FakeBox (in memory), with a stand-in for Prometheus's
HTTP API that loads what the manifest on the box names. The real path (SSH box, real
Prometheus, the CLI) is tests/alerts_ship/test_ship_rules.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any

from reconciler.engine.boxops import BoxHandle
from reconciler.engine.rules import (
    RulesLive,
    RulesTarget,
    ShipOptions,
    rules_agent,
    rules_step,
    ship_rules,
)
from reconciler.model.fleet import Connection, PrometheusBox
from reconciler.testing.clock import FakeClock
from reconciler.transport.fake import FakeBox, fail_on
from reconciler.transport.promrules import LoadedGroup

DIR = "/etc/prom/rules"
BOX = PrometheusBox(host="prom", rules_dir=DIR, url="http://prom:9090", verify_timeout_s=2)
CONN = Connection(allowed_paths=["/etc/prom"])
OLD = RulesTarget(
    "acme",
    {"acme-a.rules.yml": b"old a", "acme-gone.rules.yml": b"gone"},
    {"reconciler/acme/a": "0a", "reconciler/acme/gone": "0g"},
)
NEW = RulesTarget(
    "acme",
    {"acme-a.rules.yml": b"new a", "acme-b.rules.yml": b"new b"},
    {"reconciler/acme/a": "1a", "reconciler/acme/b": "1b"},
)
MANIFEST = f"{DIR}/.reconciler-acme.rules.json"
OTHERS = {"team/theirs": LoadedGroup("team/theirs", "", frozenset({"x"}))}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeProm:
    """Loads, on each reload, the groups the manifest on the box names (unless stuck);
    refuses a reload with `refuse` while the box holds NEW's acme-a."""

    def __init__(self, box: FakeBox, refuse: str | None = None, stuck: bool = False) -> None:
        self.box, self.refuse, self.stuck, self.reloads = box, refuse, stuck, 0
        self.groups = dict(OLD.groups)

    async def reload(self, name: str, url: str, *, timeout: float) -> str | None:
        self.reloads += 1
        if self.refuse and self.box.read(f"{DIR}/acme-a.rules.yml") == b"new a":
            return self.refuse
        if not self.stuck:
            self.groups = json.loads(self.box.read(MANIFEST) or b"{}").get("groups", {})
        return None

    async def loaded(self, name: str, url: str, **_: Any) -> dict[str, LoadedGroup]:
        ours = {n: LoadedGroup(n, "", frozenset({h})) for n, h in self.groups.items()}
        return {**ours, **OTHERS}


def _box(**kw: Any) -> FakeBox:
    files = {f"{DIR}/{n}": b for n, b in OLD.files.items()}
    files |= {MANIFEST: OLD.manifest(), f"{DIR}/other.rules.yml": b"theirs"}
    return FakeBox("prometheus", config_path=MANIFEST, files=files, **kw)


def _dir(box: FakeBox) -> dict[str, bytes]:
    return {str(p): f.data for p, f in box.files.items() if str(p.parent) == DIR}


async def _ship(box: FakeBox, prom: FakeProm) -> Any:
    h = BoxHandle(rules_agent(BOX, CONN, "acme"), box, box.fetch_health, command_timeout=5)
    step = rules_step("p", NEW, RulesLive(OLD.manifest(), None))
    assert step is not None and step.removed == ("acme-gone.rules.yml",)
    opts = ShipOptions(
        box=BOX, rollout_id="r1", holder="t", revision="rev", fence=1, lease_ttl_s=60,
        allowed_paths=tuple(CONN.allowed_paths), post_reload=prom.reload,
        read_loaded=prom.loaded,
    )  # fmt: skip
    return await ship_rules(h, NEW, step, opts, FakeClock())


async def test_shipped_writes_ours_removes_our_stale_file_and_stamps() -> None:
    box = _box()
    prom = FakeProm(box)
    got = await _ship(box, prom)
    assert got.ok, got
    assert box.read(f"{DIR}/acme-a.rules.yml") == b"new a"
    assert box.read(f"{DIR}/acme-b.rules.yml") == b"new b"
    assert box.read(f"{DIR}/acme-gone.rules.yml") is None
    assert box.read(f"{DIR}/other.rules.yml") == b"theirs"  # not ours: left alone
    assert box.read(MANIFEST) == NEW.manifest()
    stamp = json.loads(box.read(f"{MANIFEST}.stamp.json") or b"{}")
    assert (stamp["revision"], stamp["config_sha256"]) == ("rev", sha(NEW.manifest()))
    history = {p.name for p in box.files if str(p.parent) == f"{MANIFEST}.history"}
    assert {sha(b"old a"), sha(b"gone"), sha(OLD.manifest())} <= history
    assert not any(str(d).endswith(".lease") for d in box.dirs)


async def test_a_refused_reload_restores_every_file_and_reloads_again() -> None:
    box = _box()
    before = _dir(box)
    prom = FakeProm(box, refuse="failed to reload config: bad rule")
    got = await _ship(box, prom)
    assert (got.status, got.error, got.restored) == ("refused", prom.refuse, True)
    assert "not undone" in got.message
    assert _dir(box) == before
    assert prom.reloads == 2  # the new rules, then the restored ones
    assert box.read(f"{MANIFEST}.stamp.json") is None


async def test_rules_not_loaded_within_the_timeout_are_refused_and_restored() -> None:
    box = _box()
    before = _dir(box)
    got = await _ship(box, FakeProm(box, stuck=True))
    assert (got.status, got.restored) == ("refused", True)
    assert got.error == (
        "not loaded within 2s: group reconciler/acme/a is loaded with hash 0a, not 1a"
    )
    assert _dir(box) == before


async def test_a_stale_group_of_ours_still_loaded_is_not_shipped() -> None:
    box = _box()
    prom = FakeProm(box)
    orig = prom.loaded

    async def with_stale(name: str, url: str, **kw: Any) -> dict[str, LoadedGroup]:
        return {**await orig(name, url, **kw), "reconciler/acme/gone": OTHERS["team/theirs"]}

    prom.loaded = with_stale  # type: ignore[method-assign]
    got = await _ship(box, prom)
    assert got.status == "refused" and "reconciler/acme/gone" in str(got.error)


async def test_a_manifest_changed_since_the_plan_is_not_touched() -> None:
    box = _box()
    box.put(MANIFEST, b'{"files": {}, "groups": {}}\n')
    before = _dir(box)
    got = await _ship(box, FakeProm(box))
    assert got.status == "failed" and "changed since the plan" in got.message
    assert "nothing written" in got.message
    assert _dir(box) == before
    assert not any(str(d).endswith(".lease") for d in box.dirs)


async def test_a_rules_dir_leading_outside_the_allowed_paths_is_refused() -> None:
    box = _box()
    box.symlinks[PurePosixPath(DIR)] = PurePosixPath("/var/lib/elsewhere")
    before = _dir(box)
    got = await _ship(box, FakeProm(box))
    assert got.status == "failed" and "/var/lib/elsewhere" in got.message
    assert "allowed_paths" in got.message
    assert _dir(box) == before


async def test_a_failed_write_restores_what_was_written() -> None:
    box = _box(fault=fail_on("write_atomic", path=f"{DIR}/acme-b.rules.yml"))
    before = _dir(box)
    got = await _ship(box, FakeProm(box))
    assert (got.status, got.restored) == ("failed", True), got
    assert "injected failure" in got.message
    assert _dir(box) == before
