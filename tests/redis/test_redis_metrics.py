"""The redis sink's and reader's own metrics, scraped from a prometheus_client registry."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redishelpers import RedisServer

import pumpsync
from pumpsync.daemon.sinks import build_sinks, parse_sink
from pumpsync.daemon.sinks.redis import RedisSinkCollector, entry_fields
from pumpsync.events import Event
from pumpsync.metrics import start_metrics_server
from pumpsync.providers.redis import RedisConsumerCollector, RedisReader
from tests.conftest import wait_until


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def trade(i: int) -> Event:
    return Event("trade", "openpump", "Mint", f"Sig{i}", None, None, 1, 0, False, {}, side="buy", trader="T")


def test_sink_and_reader_metrics(redis_server: RedisServer, redis_db: Any) -> None:
    url = f"{redis_server.url}?stream=m:events"
    sinks = build_sinks([{**parse_sink(url), "name": "a"}, {**parse_sink(url), "name": "b"}, {"type": "stdout"}])
    registry = CollectorRegistry()
    registry.register(RedisSinkCollector(sinks))
    for sink in sinks[:2]:
        sink.start()
    for i in range(10):
        for sink in sinks[:2]:
            sink.offer(trade(i))
    wait_until(lambda: sinks[0].written + sinks[1].written == 20, what="both sinks to write")
    for sink in sinks[:2]:
        sink.close(time.monotonic() + 5)
        assert sink.join(5)
    got = samples(registry)
    published = got[("pumpsync_redis_sink_published_total", (("sink", "a"),))]
    published += got[("pumpsync_redis_sink_published_total", (("sink", "b"),))]
    deduplicated = got[("pumpsync_redis_sink_deduplicated_total", (("sink", "a"),))]
    deduplicated += got[("pumpsync_redis_sink_deduplicated_total", (("sink", "b"),))]
    assert (published, deduplicated) == (10, 10)


@pytest.mark.parametrize("kind", ["client", "reader"])
def test_consumer_metrics(redis_server: RedisServer, redis_db: Any, kind: str) -> None:
    for i in range(10):
        fields = entry_fields(trade(i))
        redis_db.xadd("m:events", dict(zip(fields[::2], fields[1::2], strict=True)))
    registry = CollectorRegistry()
    url = f"{redis_server.url}?stream=m:events&since=0&batch=2"
    if kind == "client":
        reader: Any = pumpsync.connect("redis", url=url, group="g", consumer="c1")
        sources = list(reader.transports)
    else:
        reader = RedisReader(url, group="g", consumer="c1").start()
        sources = [reader]
    with reader:
        registry.register(RedisConsumerCollector(sources))
        reader.get(timeout=10)
        labels = (("consumer", "c1"), ("group", "g"), ("stream", "m:events"))
        wait_until(lambda: samples(registry).get(("pumpsync_redis_consumer_pending", labels)), what="pending entries")
        got = samples(registry)
        assert 1 <= got[("pumpsync_redis_consumer_pending", labels)] <= 4  # the one in hand and those read ahead
        assert got[("pumpsync_redis_consumer_lag_entries", labels)] >= 1
        assert got[("pumpsync_redis_consumer_lag_seconds", labels)] >= 0


def test_the_metrics_server_exports_the_redis_sinks_and_consumers_metrics(
    redis_server: RedisServer, redis_db: Any
) -> None:
    """make_registry picks up the collectors that redis sinks and a client's redis transports bring
    along (no test of the provider's name): one scrape shows both, each family once."""
    sink_url = f"{redis_server.url}?stream=w:events"
    sinks = build_sinks([{**parse_sink(sink_url), "name": "fanout"}, {"type": "stdout", "name": "out"}])
    sinks[0].start()
    try:
        for i in range(5):
            sinks[0].offer(trade(i))
        wait_until(lambda: sinks[0].written == 5, what="the sink to write")
        sinks[0].offer(trade(0))  # the same identity again: de-duplicated
        wait_until(lambda: sinks[0].written == 6, what="the sink to take the duplicate")
        url = f"{redis_server.url}?stream=w:events&since=0&batch=2"
        with pumpsync.connect("redis", url=url, group="g", consumer="c1") as client:
            client.get(timeout=10)
            server = start_metrics_server(client, "127.0.0.1:0", sinks)
            try:
                labels = (("consumer", "c1"), ("group", "g"), ("stream", "w:events"))

                def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                    return samples(server.registry)

                got = wait_until(
                    lambda: (s := scrape()).get(("pumpsync_redis_consumer_pending", labels)) and s,
                    what="the consumer's pending entries",
                )
                body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
            finally:
                server.close()
    finally:
        sinks[0].close(time.monotonic() + 5)
        assert sinks[0].join(5)
    assert got[("pumpsync_redis_sink_published_total", (("sink", "fanout"),))] == 5
    assert got[("pumpsync_redis_sink_deduplicated_total", (("sink", "fanout"),))] == 1
    assert ("pumpsync_redis_sink_published_total", (("sink", "out"),)) not in got  # redis sinks only
    assert got[("pumpsync_redis_consumer_lag_entries", labels)] >= 0
    assert got[("pumpsync_redis_consumer_pending", labels)] >= 1
    for family in ("pumpsync_redis_sink_published_total", "pumpsync_redis_consumer_lag_seconds",
                   "pumpsync_redis_consumer_pending", "pumpsync_events_total"):  # fmt: skip
        assert body.count(f"# TYPE {family} ") == 1, family


def test_a_client_on_another_provider_has_no_redis_metrics() -> None:
    from pumpsync.metrics import make_registry

    client = pumpsync.Client("openpump", url="ws://127.0.0.1:9/", api_key="k")  # never started
    text = generate_latest(make_registry(client)).decode()
    assert "pumpsync_redis" not in text and "pumpsync_events_total" in text


def test_sinks_of_one_class_share_one_collector() -> None:
    from pumpsync.metrics import extra_collectors

    url = "redis://127.0.0.1:9/0?stream=x"  # never opened
    sinks = build_sinks([{"type": "redis", "url": url, "name": "a"}, {"type": "redis", "url": url, "name": "b"},
                         {"type": "stdout"}])  # fmt: skip
    (collector,) = extra_collectors(sinks)
    assert isinstance(collector, RedisSinkCollector) and [s.name for s in collector.sinks] == ["a", "b"]
