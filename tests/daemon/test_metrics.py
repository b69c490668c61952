"""The metrics endpoint in-process: a real client on a real simulator, scraped over HTTP."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from daemonhelpers import http_get, wait_until
from prometheus_client.parser import text_string_to_metric_families

from pumpsync import Client
from pumpsync.daemon.sinks import Sink
from pumpsync.events import Event
from pumpsync.metrics import MetricsServer, parse_addr, start_metrics_server
from pumpsync.simulator import Simulator

FAST = dict(ping_interval=0.3, pong_timeout=0.25, stale_timeout=2.0, backoff_initial=0.05, backoff_max=0.3)
ALLOWED_LABELS = {"provider", "connection", "kind", "reason", "code", "channel", "sink", "state", "le", "version",
                  "python"}  # fmt: skip
REQUIRED = {
    "pumpsync_build_info", "pumpsync_connection_up", "pumpsync_connection_state", "pumpsync_connection_healthy",
    "pumpsync_connects_total", "pumpsync_disconnects_total", "pumpsync_events_total", "pumpsync_event_delay_seconds",
    "pumpsync_heartbeat_rtt_seconds", "pumpsync_last_event_timestamp_seconds", "pumpsync_queue_depth",
    "pumpsync_queue_capacity", "pumpsync_dropped_events_total", "pumpsync_duplicate_events_total",
    "pumpsync_first_deliveries_total", "pumpsync_backfill_requests_total", "pumpsync_backfill_events_total",
    "pumpsync_backfill_failures_total", "pumpsync_malformed_frames_total", "pumpsync_sink_events_written_total",
    "pumpsync_sink_failures_total", "pumpsync_sink_events_dropped_total",
}  # fmt: skip


class Counting(Sink):
    kind = "memory"

    def write(self, batch: list[Event]) -> None:
        pass


@pytest.fixture
def served(sim: Simulator) -> Iterator[Callable[..., tuple[Client, MetricsServer]]]:
    made: list[tuple[Client, MetricsServer]] = []

    def make(provider: str = "anaxer", **options: Any) -> tuple[Client, MetricsServer]:
        if provider == "anaxer":
            options.setdefault("rest_url", sim.rest_url("anaxer"))
        client = Client(provider, api_key="metrics-test-key", url=sim.url(provider), **{**FAST, **options})
        server = start_metrics_server(client, "127.0.0.1:0", sinks=[Counting("memory")])
        made.append((client, server))
        return client, server

    yield make
    for client, server in made:
        client.close()
        server.close()


def families(url: str) -> dict[str, Any]:
    status, body = http_get(url + "/metrics")
    assert status == 200
    return {f.name: f for f in text_string_to_metric_families(body)}


def test_scrape_has_every_metric_with_bounded_labels(served: Any, sim: Simulator) -> None:
    client, server = served("anaxer", connections=2)
    assert http_get(server.url + "/readyz")[0] == 503  # not started: nothing healthy yet
    client.start()
    wait_until(lambda: http_get(server.url + "/readyz")[0] == 200, what="/readyz")
    sim.wait_for_connections("anaxer", 2, subscribed=True)
    published = sim.emit(20)
    sim.drop("anaxer", index=0)  # one disconnect, so that reasons appear
    wait_until(lambda: sum(c.connects for c in client.raw_stats.connections) >= 3, what="a reconnect")
    wait_until(lambda: all(c.pongs for c in client.raw_stats.connections), what="heartbeats")
    wait_until(lambda: client.raw_stats.delivered >= 20, what="events")
    status, body = http_get(server.url + "/metrics")
    assert status == 200
    found = {f.name for f in text_string_to_metric_families(body)}
    found |= {s.name for f in text_string_to_metric_families(body) for s in f.samples}
    assert found >= REQUIRED, REQUIRED - found
    for family in text_string_to_metric_families(body):
        assert family.name.startswith("pumpsync_"), family.name
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
    assert published
    for record in sim.history("anaxer"):  # no mint, wallet or signature ever becomes a label
        for key in ("mint", "signature", "wallet"):
            assert not record.get(key) or record[key] not in body
    assert "metrics-test-key" not in body
    assert 'pumpsync_disconnects_total{code="",connection="0",provider="anaxer",reason="dropped"}' in body
    assert http_get(server.url + "/healthz") == (200, "ok\n")
    assert http_get(server.url + "/nope")[0] == 404


def test_histograms_are_cumulative_and_consistent(served: Any, sim: Simulator) -> None:
    client, server = served("openpump")
    client.start()
    sim.wait_for_connections("openpump", 1)
    sim.emit(10)
    wait_until(lambda: client.raw_stats.delay.count >= 10 and client.raw_stats.connections[0].pongs, what="data")
    for name in ("pumpsync_event_delay_seconds", "pumpsync_heartbeat_rtt_seconds"):
        family = families(server.url)[name]
        assert family.type == "histogram"
        buckets = [s for s in family.samples if s.name.endswith("_bucket")]
        values = [s.value for s in buckets]
        assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
        (count,) = [s.value for s in family.samples if s.name.endswith("_count")]
        assert count == values[-1] > 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_accepts_a_real_scrape(served: Any, sim: Simulator) -> None:
    client, server = served("anaxer")
    client.start()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(5)
    wait_until(lambda: client.raw_stats.delivered >= 5, what="events")
    body = http_get(server.url + "/metrics")[1]
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


def test_readyz_turns_503_when_no_connection_is_healthy(served: Any) -> None:
    with Simulator(providers=("openpump",), rate=0) as own:
        client = Client("openpump", api_key="k", url=own.url("openpump"), **FAST)
        server = start_metrics_server(client, "127.0.0.1:0")
        try:
            client.start()
            wait_until(lambda: http_get(server.url + "/readyz")[0] == 200, what="ready")
            own.stop()
            wait_until(lambda: http_get(server.url + "/readyz")[0] == 503, what="not ready once the server is gone")
            assert http_get(server.url + "/healthz")[0] == 200
        finally:
            client.close()
            server.close()


def test_port_zero_binds_a_free_port_and_close_frees_it() -> None:
    client = Client("openpump", api_key="k", url="ws://127.0.0.1:9/")
    server = start_metrics_server(client, "127.0.0.1:0")
    port = server.port
    assert port > 0 and http_get(server.url + "/healthz")[0] == 200
    server.close()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a restarted daemon does (TIME_WAIT)
        sock.bind(("127.0.0.1", port))  # free again


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_addr("[::1]:9108") == ("::1", 9108)
    assert parse_addr(":9108") == ("", 9108)
    for bad in ("9108", "host:", "host:99999", "host:x"):
        with pytest.raises(ValueError):
            parse_addr(bad)
