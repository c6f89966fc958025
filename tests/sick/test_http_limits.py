"""Box health, /metrics and Prometheus over a sick server: one deadline for the whole
exchange (a trickling body included), 1 MiB at most, and probes only where allowed."""

from __future__ import annotations

import json
import time

import pydantic
import pytest

from reconciler.metrics.scrape import ScrapeSource
from reconciler.model.fleet import FleetFile
from reconciler.transport.base import OperationTimeout, RemoteError, TransportError
from reconciler.transport.http import HttpProbe
from reconciler.transport.prometheus import PrometheusClient, PrometheusError

from .server import Behaviour, SickServer, prom_time

HEALTH = json.dumps({
    "alive": True, "heartbeat_age_s": 1.5, "loaded_revision": "abc", "loaded_sha256": None,
    "agent_version": "1.2.3", "tasks_processed": 10, "queue_depth": 0, "uptime_s": 100.0,
}).encode()  # fmt: skip
TWO_MIB = b" " * (2 * 1024 * 1024)


def route(path: str, query: dict[str, str]) -> Behaviour:
    return {
        "/health": Behaviour(body=HEALTH),
        "/metrics": Behaviour(body=b"tasks_total 3\n", content_type="text/plain"),
        "/trickle": Behaviour(body=b"tasks_total 3\n" * 4, trickle_s=0.2),
        "/hang": Behaviour(hang=True),
        "/huge": Behaviour(body=b"# " + TWO_MIB + b"\n", content_type="text/plain"),
        "/huge-health": Behaviour(body=HEALTH[:-1] + b', "x": "' + TWO_MIB + b'"}'),
        "/endless": Behaviour(endless=True, content_type="text/plain"),
    }.get(path, Behaviour(status=404, body=b"no"))


@pytest.fixture
def sick() -> object:
    with SickServer(route) as server:
        yield server


@pytest.mark.parametrize("path", ["/trickle", "/hang"])
async def test_a_slow_box_is_cut_at_the_deadline(sick: SickServer, path: str) -> None:
    """Headers late, or a body one byte at a time: OperationTimeout at the deadline."""
    async with HttpProbe() as probe:
        started = time.monotonic()
        with pytest.raises(OperationTimeout, match=r"within 0\.5s"):
            await probe.fetch_text(f"{sick.url}{path}", timeout=0.5, box="a1")
        with pytest.raises(OperationTimeout):
            await probe.fetch_health(f"{sick.url}{path}", timeout=0.5, box="a1")
    assert time.monotonic() - started < 2 * 0.5 + 1.0


@pytest.mark.parametrize("path", ["/huge", "/endless"])
async def test_metrics_larger_than_a_mebibyte_are_refused(sick: SickServer, path: str) -> None:
    """A 2 MiB or endless /metrics: RemoteError naming the limit, read no further."""
    async with HttpProbe() as probe:
        started = time.monotonic()
        with pytest.raises(RemoteError, match="too large") as err:
            await probe.fetch_text(f"{sick.url}{path}", timeout=10, box="a1")
    assert "1024 KiB" in str(err.value)
    assert time.monotonic() - started < 5


async def test_a_health_answer_larger_than_a_mebibyte_is_refused(sick: SickServer) -> None:
    """A health body of 2 MiB is refused, not parsed."""
    async with HttpProbe() as probe:
        with pytest.raises(RemoteError, match="too large"):
            await probe.fetch_health(f"{sick.url}/huge-health", timeout=10, box="a1")


async def test_prometheus_trickling_its_answer_is_cut_at_the_deadline() -> None:
    """Prometheus sending one byte every 0.2 s: PrometheusError at the deadline, not at the end."""
    body = json.dumps({"status": "success", "data": {"resultType": "scalar",
                                                      "result": [1, "1"]}}).encode()  # fmt: skip
    with SickServer(lambda p, q: Behaviour(body=body, trickle_s=0.2)) as server:
        client = PrometheusClient(server.url, timeout=0.6)
        started = time.monotonic()
        try:
            with pytest.raises(PrometheusError, match=r"within 0\.6s"):
                await client.instant("time()")
        finally:
            await client.close()
    assert time.monotonic() - started < 0.6 + 1.0


async def test_prometheus_answering_more_than_a_mebibyte_is_refused() -> None:
    """A 2 MiB answer is refused while it arrives, naming the limit."""
    with SickServer(lambda p, q: Behaviour(endless=True)) as server:
        client = PrometheusClient(server.url, timeout=10)
        try:
            with pytest.raises(PrometheusError, match="too large"):
                await client.instant("time()")
        finally:
            await client.close()


async def test_prometheus_that_answers_in_time_still_works() -> None:
    """The bounded read changes nothing for a healthy server."""
    with SickServer(lambda p, q: prom_time(42.0)) as server:
        client = PrometheusClient(server.url, timeout=5)
        try:
            assert await client.instant("time()") == [({}, 42.0)]
        finally:
            await client.close()


async def test_a_probe_on_another_host_is_refused_naming_the_setting(sick: SickServer) -> None:
    """A box at box-1.example whose health URL names 127.0.0.1: refused, nothing sent."""
    async with HttpProbe() as probe:
        with pytest.raises(TransportError, match=r"connection\.allowed_probe_hosts") as err:
            await probe.fetch_health(f"{sick.url}/health", timeout=5, box="a1", host="box-1")
        with pytest.raises(TransportError, match=r"connection\.allowed_probe_hosts"):
            await probe.fetch_text(f"{sick.url}/metrics", timeout=5, box="a1", host="box-1")
    assert "not the box's host (box-1)" in str(err.value)
    assert sick.requests == []


async def test_a_probe_host_fleet_yaml_allows_is_probed(sick: SickServer) -> None:
    """Listed in connection.allowed_probe_hosts: the probe goes; its own host always may."""
    async with HttpProbe(allowed_hosts=["127.0.0.1"]) as probe:
        h = await probe.fetch_health(f"{sick.url}/health", timeout=5, box="a1", host="box-1")
        assert h.alive
    async with HttpProbe() as probe:
        text = await probe.fetch_text(f"{sick.url}/metrics", timeout=5, host="127.0.0.1")
        assert text == "tasks_total 3\n"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]:9100/metrics",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
async def test_link_local_and_metadata_addresses_are_never_probed(url: str) -> None:
    """Even allowed, even as the box's own host: refused before any connection."""
    netloc = url.split("/")[2]
    host = netloc[1 : netloc.index("]")] if netloc.startswith("[") else netloc.split(":")[0]
    async with HttpProbe(allowed_hosts=[host]) as probe:
        with pytest.raises(TransportError, match=r"link-local|metadata"):
            await probe.fetch_text(url, timeout=1, box="a1", host=host)


@pytest.mark.parametrize("host", ["169.254.169.254", "fe80::1", "metadata.google.internal"])
def test_fleet_yaml_cannot_allow_a_metadata_address(host: str) -> None:
    """connection.allowed_probe_hosts naming a link-local or metadata host fails validation."""
    with pytest.raises(pydantic.ValidationError, match="never be allowed"):
        FleetFile.model_validate({"fleet_id": "f", "connection": {"allowed_probe_hosts": [host]}})
    ok = {"fleet_id": "f", "connection": {"allowed_probe_hosts": ["exporter.internal"]}}
    assert FleetFile.model_validate(ok).connection.allowed_probe_hosts == ["exporter.internal"]


async def test_the_scrape_source_refuses_a_metrics_url_off_the_box(sick: SickServer) -> None:
    """A gate's direct scrape of a URL on another host: that agent's window names the setting."""
    async with HttpProbe() as probe:
        source = ScrapeSource(probe, {"a1": f"{sick.url}/metrics"}, hosts={"a1": "box-1"})
        mark = await source.open(["a1"])
    assert "connection.allowed_probe_hosts" in str(mark["a1"])  # type: ignore[index]
    assert sick.requests == []
