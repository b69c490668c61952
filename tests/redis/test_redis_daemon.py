"""``pumpsync daemon --sink redis://...`` as real subprocesses against the simulator and a real
redis-server: end to end into a reader, Redis restarted mid-stream, an HA pair under kills."""

from __future__ import annotations

import json
import queue
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redishelpers import RedisServer, settle

from pumpsync.events import Event
from pumpsync.providers.redis import RedisReader
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.daemon.daemonhelpers import FAST_FLAGS, DaemonProc, clean_env

KINDS = {"buy": "trade", "sell": "trade", "new_token": "new_token", "token_enriched": "token_enriched"}
ENV = {"PUMPSYNC_API_KEY": "test-key"}


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProc]]:
    procs: list[DaemonProc] = []
    yield procs
    for proc in procs:
        proc.kill()


def start(procs: list[DaemonProc], tmp: Path, sim: Simulator, *sinks: str) -> DaemonProc:
    args = ["--provider", "openpump", "--url", sim.url("openpump"), *FAST_FLAGS]
    for spec in sinks:
        args += ["--sink", spec]
    proc = DaemonProc(args, tmp, clean_env(**ENV), f"daemon{len(procs)}")
    procs.append(proc)
    return proc


def expected(sim: Simulator) -> Counter[tuple[str, str]]:
    return Counter((KINDS[r["type"]], r["signature"]) for r in sim.history("openpump"))


def emit(sim: Simulator, n: int) -> None:
    """``n`` market steps, and the enrichment of every launch among them (it follows a little later)."""
    sim.emit(n)

    def enriched() -> bool:
        kinds = Counter(r["type"] for r in sim.history("openpump"))
        return kinds["new_token"] == kinds["token_enriched"]

    wait_until(enriched, what="the simulator to enrich every launch")


def in_stream(client: Any, stream: str) -> Counter[tuple[str, str]]:
    return Counter((f["kind"], f["signature"]) for _, f in client.xrange(stream))


def test_daemon_to_redis_to_reader_end_to_end(
    sim: Simulator, redis_server: RedisServer, redis_db: Any, daemons: list[DaemonProc], tmp_path: Path
) -> None:
    jsonl = tmp_path / "events.jsonl"
    stream = "e2e:events"
    daemon = start(daemons, tmp_path, sim, f"{redis_server.url}?stream={stream}&maxlen=10000", f"jsonl:{jsonl}")
    daemon.wait_ready()
    with RedisReader(f"{redis_server.url}?stream={stream}&since=0", backoff_initial=0.05, backoff_max=0.3) as reader:
        emit(sim, 30)
        wait_until(lambda: in_stream(redis_db, stream) == expected(sim), what="every event in the stream")
        total = sum(expected(sim).values())
        wait_until(lambda: len(jsonl.read_text().splitlines()) == total, what="every event in the JSONL file")
        lines = jsonl.read_text().splitlines()
        got = [reader.get(timeout=10) for _ in range(len(lines))]
        with pytest.raises(queue.Empty):
            reader.get(timeout=0.3)
    # The same Event objects as the daemon's own: the JSONL sink's lines, read back.
    assert got == [Event.from_dict(json.loads(line)) for line in lines]
    # And from the command line, as a provider like any other.
    cli = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--provider", "redis", "--format", "jsonl",
         "--url", f"{redis_server.url}?stream={stream}&since=0", "--count", str(len(lines))],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert [json.loads(line) for line in cli.stdout.splitlines()] == [json.loads(line) for line in lines]
    assert [f["event"] for _, f in redis_db.xrange(stream)] == lines
    assert daemon.sample("pumpsync_sink_events_written_total", sink="redis") == len(lines)
    assert daemon.stop() == 0


def test_redis_restarted_mid_stream_loses_nothing(
    sim: Simulator, redis_server: RedisServer, redis_db: Any, daemons: list[DaemonProc], tmp_path: Path
) -> None:
    stream = "restart:events"
    daemon = start(daemons, tmp_path, sim, f"{redis_server.url}?stream={stream}")
    daemon.wait_ready()
    reader = RedisReader(f"{redis_server.url}?stream={stream}&since=0", backoff_initial=0.05, backoff_max=0.3)
    got: list[Event] = []

    def consume() -> None:
        for event in reader:
            got.append(event)

    consumer = threading.Thread(target=consume)
    reader.start()
    consumer.start()
    try:
        emit(sim, 20)
        wait_until(lambda: in_stream(redis_db, stream) == expected(sim), what="the first events in the stream")
        redis_server.stop()
        emit(sim, 20)  # the sink buffers them and retries
        wait_until(lambda: (daemon.sample("pumpsync_sink_failures_total", sink="redis") or 0) > 0,
                   what="the sink to notice the outage")  # fmt: skip
        redis_server.start()
        emit(sim, 10)
        client = redis_server.client()
        wait_until(lambda: in_stream(client, stream) == expected(sim), 30, "every event in the stream")
        wait_until(lambda: len(got) == sum(expected(sim).values()), what="the reader to catch up")
    finally:
        reader.close()
        consumer.join(10)
    assert Counter((e.kind, e.signature) for e in got) == expected(sim)
    assert max(in_stream(client, stream).values()) == 1
    assert daemon.sample("pumpsync_sink_events_dropped_total", sink="redis") == 0
    assert daemon.stop() == 0


def test_ha_pair_each_event_once_while_daemons_are_killed(
    sim: Simulator, redis_server: RedisServer, redis_db: Any, daemons: list[DaemonProc], tmp_path: Path
) -> None:
    stream = "ha:events"
    sink = f"{redis_server.url}?stream={stream}&dedup=300"
    pair = [start(daemons, tmp_path, sim, sink), start(daemons, tmp_path, sim, sink)]
    for daemon in pair:
        daemon.wait_ready()
    sim.wait_for_connections("openpump", 2)
    stop = threading.Event()

    def market() -> None:
        while not stop.is_set():
            sim.emit(1)
            stop.wait(0.005)

    emitter = threading.Thread(target=market)
    emitter.start()
    rng = random.Random()
    try:
        for _ in range(4):
            victim = rng.randrange(2)
            settle(rng.uniform(0.1, 0.8))
            pair[victim].kill()  # SIGKILL: whatever it had buffered is lost with it
            pair[victim] = start(daemons, tmp_path, sim, sink)
            pair[victim].wait_ready()
            sim.wait_for_connections("openpump", 2)  # both see the stream again before the next kill
    finally:
        stop.set()
        emitter.join(10)
    wait_until(lambda: in_stream(redis_db, stream) == expected(sim), 30, "every event once in the stream")
    for daemon in pair:
        assert daemon.stop() == 0
    counts = in_stream(redis_db, stream)
    assert counts == expected(sim)
    assert set(counts.values()) == {1}
    assert redis_db.xlen(stream) == sum(counts.values())


def test_daemons_export_the_redis_sink_and_consumer_metrics(
    sim: Simulator, redis_server: RedisServer, redis_db: Any, daemons: list[DaemonProc], tmp_path: Path
) -> None:
    """An HA pair with redis sinks, and a daemon on the redis source (a group member): their
    /metrics show what each appended and left to the other, and the consumer's lag and pending."""
    stream = "metrics:events"
    pair = [start(daemons, tmp_path, sim, f"{redis_server.url}?stream={stream}") for _ in range(2)]
    for daemon in pair:
        daemon.wait_ready()
    sim.wait_for_connections("openpump", 2)
    consumer = DaemonProc(
        ["--provider", "redis", "--url", f"{redis_server.url}?stream={stream}&since=0", "--group", "bots",
         "--consumer", "bot-1", "--sink", f"jsonl:{tmp_path / 'consumed.jsonl'}"],
        tmp_path, clean_env(), "consumer",
    )  # fmt: skip
    daemons.append(consumer)
    consumer.wait_ready()
    emit(sim, 30)
    wait_until(lambda: in_stream(redis_db, stream) == expected(sim), what="every event in the stream")
    total = sum(expected(sim).values())

    def counts(name: str) -> list[float]:
        return [daemon.sample(f"pumpsync_redis_sink_{name}_total", sink="redis") or 0.0 for daemon in pair]

    # Each event once in the stream, seen by both: one daemon appended it, the other left it out.
    wait_until(lambda: sum(counts("published")) + sum(counts("deduplicated")) == 2 * total, what="both daemons")
    assert sum(counts("published")) == total == redis_db.xlen(stream)
    labels = {"stream": stream, "group": "bots", "consumer": "bot-1"}
    wait_until(lambda: consumer.sample("pumpsync_redis_consumer_lag_entries", **labels) == 0, what="no lag")
    assert consumer.sample("pumpsync_redis_consumer_lag_seconds", **labels) is not None
    assert consumer.sample("pumpsync_redis_consumer_pending", **labels) is not None
    assert consumer.sample("pumpsync_redis_sink_published_total") is None  # no redis sink there
    for daemon in (*pair, consumer):
        assert daemon.stop() == 0
