"""Demo boxes over HTTP: health per the contract's schema, metrics in Prometheus text."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from reconciler.demo import DemoFleet
from reconciler.demo.http import read_token
from reconciler.model.box import (
    LATENCY_BUCKETS,
    METRIC_COST,
    METRIC_LATENCY,
    METRIC_MEMORY,
    METRIC_QUEUE,
    METRIC_TASK_ERRORS,
    METRIC_TASKS,
    METRIC_TOKENS_IN,
    METRIC_TOKENS_OUT,
    parse_health,
)

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas/health.schema.json").read_text())


def _auth(fleet: DemoFleet) -> dict[str, str]:
    """The control token `reconcile demo fault` sends (DIR/control.token)."""
    return {"Authorization": f"Bearer {read_token(fleet.dir.root)}"}


async def test_healthz_answers_the_contract_fields(demo_fleet: DemoFleet) -> None:
    """/healthz validates against schemas/health.schema.json and names the seeded revision."""
    async with httpx.AsyncClient() as client:
        for name in demo_fleet.names:
            box = demo_fleet.box(name)
            r = await client.get(box.health_url)
            assert r.status_code == 200
            jsonschema.validate(r.json(), SCHEMA)
            health = parse_health(r.content)
            assert health.alive
            assert health.loaded_revision == demo_fleet.first_commit
            assert health.loaded_sha256 == box.agent.loaded_sha
            assert set(SCHEMA["properties"]) <= set(r.json())


async def test_metrics_parse_with_prometheus_clients_parser(demo_fleet: DemoFleet) -> None:
    """/metrics exposes every contract metric, labelled by agent, with the contract's buckets."""
    name = demo_fleet.names[0]
    box = demo_fleet.box(name)
    box.work(60)
    async with httpx.AsyncClient() as client:
        r = await client.get(box.metrics_url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {
        s.name: s
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if "le" not in s.labels
    }
    for metric in (
        METRIC_TASKS,
        METRIC_TASK_ERRORS,
        METRIC_TOKENS_IN,
        METRIC_TOKENS_OUT,
        METRIC_COST,
        METRIC_MEMORY,
        METRIC_QUEUE,
        f"{METRIC_LATENCY}_count",
        f"{METRIC_LATENCY}_sum",
    ):
        assert metric in samples, metric
        assert samples[metric].labels["agent"] == name
    assert samples[METRIC_TASKS].value > 0
    assert samples[f"{METRIC_LATENCY}_count"].value == samples[METRIC_TASKS].value
    les = [
        s.labels["le"]
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == f"{METRIC_LATENCY}_bucket"
    ]
    assert les == [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]


async def test_each_box_has_its_own_base_url(demo_fleet: DemoFleet) -> None:
    """Boxes answer on their own ports, each with its own agent label."""
    urls = {demo_fleet.box(n).metrics_url for n in demo_fleet.names}
    assert len(urls) == len(demo_fleet.names)
    async with httpx.AsyncClient() as client:
        for name in demo_fleet.names:
            text = (await client.get(demo_fleet.box(name).metrics_url)).text
            assert f'agent="{name}"' in text


async def test_unknown_paths_are_404_and_demo_api_gives_counters(demo_fleet: DemoFleet) -> None:
    """Anything but the contract's endpoints is 404; /_demo/counters answers JSON."""
    box = demo_fleet.box(demo_fleet.names[0])
    async with httpx.AsyncClient(base_url=box.base_url, headers=_auth(demo_fleet)) as client:
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/healthz")).status_code == 404
        counters = (await client.get("/_demo/counters")).json()
        assert counters["reloads"] == 0
        assert counters["config_bytes_received"] == 0
        r = await client.post("/_demo/fault", json={"kind": "bogus"})
        assert r.status_code == 400
        assert "one of" in r.json()["error"]
        r = await client.post("/_demo/fault", json={"kind": "stall"})
        assert r.json() == {"stall": None}
        assert (await client.get("/_demo/faults")).json() == {"stall": None}
        r = await client.post("/_demo/fault", json={"kind": "stall", "clear": True})
        assert r.json() == {}
