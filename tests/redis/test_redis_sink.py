"""The redis sink in-process against a real redis-server: entries, retention, de-duplication, outages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from redishelpers import RedisServer, wait_for_len

from pumpsync.daemon.sinks import RedisSink, build_sinks, parse_sink
from pumpsync.daemon.sinks.base import event_json
from pumpsync.errors import ConfigurationError
from pumpsync.events import Event
from tests.conftest import wait_until


def trade(i: int, **changes: Any) -> Event:
    event = Event(
        kind="trade", provider="openpump", mint=f"Mint{i % 3}", signature=f"Sig{i}", slot=1000 + i,
        timestamp=1_700_000_000_000 + i, received_at=1_700_000_000_050 + i, connection=0, backfill=False,
        raw={"type": "buy", "n": i}, side="buy", sol_amount=0.5, trader=f"Trader{i}", channel="trades",
    )  # fmt: skip
    return event._replace(**changes)


def sink(url: str, **options: Any) -> RedisSink:
    (built,) = build_sinks([{**parse_sink(url), **options}])
    assert isinstance(built, RedisSink)
    built.start()
    return built


def close(*sinks: RedisSink) -> None:
    for s in sinks:
        s.close(time.monotonic() + 5)
    for s in sinks:
        assert s.join(10)


def test_entries_carry_the_events_json_and_filter_fields(redis_server: RedisServer, redis_db: Any) -> None:
    s = sink(f"{redis_server.url}?stream=t:events")
    unknown = trade(99, kind="unknown", signature=None, side=None, sol_amount=None, trader=None)
    events = [trade(i) for i in range(20)] + [unknown]
    for event in events:
        assert s.offer(event)
    wait_until(lambda: s.written == len(events), what="every event written")
    close(s)
    entries = redis_db.xrange("t:events")
    assert [fields["event"] for _, fields in entries] == [event_json(e) for e in events]
    assert [Event.from_dict(json.loads(fields["event"])) for _, fields in entries] == events
    first = entries[0][1]
    assert {k: first[k] for k in ("kind", "provider", "channel", "mint", "signature", "slot", "side")} == {
        "kind": "trade", "provider": "openpump", "channel": "trades", "mint": "Mint0", "signature": "Sig0",
        "slot": "1000", "side": "buy",
    }  # fmt: skip
    assert "signature" not in entries[-1][1]  # None fields are left out
    assert (s.published, s.deduplicated, s.failures, s.dropped) == (len(events), 0, 0, 0)


@pytest.mark.parametrize("dedup", ["120", "0"])
def test_retention_by_length_is_bounded(redis_server: RedisServer, redis_db: Any, dedup: str) -> None:
    s = sink(f"{redis_server.url}?stream=t:len&maxlen=1000&dedup={dedup}", buffer=50_000)
    for i in range(5000):
        assert s.offer(trade(i))
    wait_until(lambda: s.written == 5000, what="every event written")
    close(s)
    # Approximate trimming removes whole macro nodes (100 entries each by default): never below the bound.
    assert 1000 <= redis_db.xlen("t:len") < 1000 + 200
    assert redis_db.xrevrange("t:len", count=1)[0][1]["signature"] == "Sig4999"


def test_retention_by_age_drops_old_entries(redis_server: RedisServer, redis_db: Any) -> None:
    s = sink(f"{redis_server.url}?stream=t:age&max_age=0.5")
    for i in range(300):
        s.offer(trade(i))
    wait_until(lambda: s.written == 300, what="the first events written")
    n = [300]

    def old_ones_gone() -> bool:  # keep writing: trimming happens as batches are appended
        s.offer(trade(n[0]))
        n[0] += 1
        return not any(f["signature"] == "Sig0" for _, f in redis_db.xrange("t:age", count=400))

    wait_until(old_ones_gone, 20, "the oldest entries to be trimmed", interval=0.05)
    close(s)
    oldest_ms = int(redis_db.xrange("t:age", count=1)[0][0].split("-")[0])
    newest_ms = int(redis_db.xrevrange("t:age", count=1)[0][0].split("-")[0])
    assert newest_ms - oldest_ms < 60_000  # bounded by age, not by count


def test_two_sinks_append_each_identity_once(redis_server: RedisServer, redis_db: Any) -> None:
    """The HA pair in miniature: two daemons' sinks, the same events in different orders and batches."""
    url = f"{redis_server.url}?stream=t:ha&dedup=60"
    a, b = sink(url, name="a", batch_size=7), sink(url, name="b", batch_size=13)
    events = [trade(i) for i in range(400)]
    for i, event in enumerate(events):
        a.offer(event._replace(connection=0, received_at=1))
        b.offer(events[-1 - i]._replace(received_at=2))
    wait_until(lambda: a.written + b.written == 800, what="both sinks to finish")
    close(a, b)
    signatures = [f["signature"] for _, f in redis_db.xrange("t:ha")]
    assert sorted(signatures) == sorted(e.signature for e in events)
    assert a.published + b.published == 400
    assert a.deduplicated + b.deduplicated == 400
    assert redis_db.zcard("t:ha:dedup") == 400


def test_redis_down_buffers_counts_overflow_and_resumes(redis_server: RedisServer, redis_db: Any) -> None:
    s = sink(f"{redis_server.url}?stream=t:down", buffer=100, batch_size=10, retry_initial=0.05, retry_max=0.2)
    for i in range(10):
        s.offer(trade(i))
    wait_for_len(redis_db, "t:down", 10)
    redis_server.stop()
    try:
        for i in range(10, 20):
            s.offer(trade(i))
        wait_until(lambda: s.failures > 0 and not s.healthy, what="the sink to notice the outage")
        # One batch is in hand (retrying); the buffer takes 100 more; the rest is refused and counted.
        for i in range(20, 400):
            s.offer(trade(i))
        assert s.depth <= 100
        assert s.dropped > 0
    finally:
        redis_server.start()
    wait_until(lambda: s.healthy and s.depth == 0, what="the buffer to drain after Redis is back")
    close(s)
    client = redis_server.client()
    signatures = [f["signature"] for _, f in client.xrange("t:down")]
    assert len(signatures) == len(set(signatures)) == s.written == 400 - s.dropped
    assert signatures[:20] == [f"Sig{i}" for i in range(20)]  # nothing before the outage lost


def test_bad_urls_and_options_fail_at_build_time() -> None:
    for spec in ("redis://127.0.0.1:6379/0?maxlen=-1", "redis://127.0.0.1:6379/0?dedup=soon", "redis://:x"):
        with pytest.raises(ConfigurationError):
            build_sinks([parse_sink(spec)])
    assert "secret" not in RedisSink("r", "redis://:secret@127.0.0.1/0").describe()


def test_a_missing_redis_package_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from pumpsync.daemon.sinks import build_sinks, parse_sink\n"
        "from pumpsync.errors import ConfigurationError\n"
        "try:\n    build_sinks([parse_sink('redis://127.0.0.1/0')])\n"
        "except ConfigurationError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "pumpsync[redis]" in out


def test_a_refused_xadd_burns_no_identity(redis_server: RedisServer, redis_db: Any) -> None:
    """#22.8: an ACL that refused XADD for a while cost events for good: the script's ZADD NX (the
    de-duplication mark) survived the failed XADD, so every retry, and an HA partner, skipped them
    as written. A real ACL user whose XADD permission is taken away and given back at run time."""
    password = "sink-pass-8"
    redis_db.execute_command("ACL", "SETUSER", "writer", "on", f">{password}", "~*", "&*", "+@all")
    url = f"redis://writer:{password}@127.0.0.1:{redis_server.port}/0?stream=t:acl&dedup=60"
    s = sink(url, name="a", batch_size=10, retry_initial=0.05, retry_max=0.2)
    try:
        events = [trade(i) for i in range(300)]
        for event in events[:100]:
            s.offer(event)
        wait_for_len(redis_db, "t:acl", 100)
        redis_db.execute_command("ACL", "SETUSER", "writer", "-xadd")
        for event in events[100:200]:
            s.offer(event)
        wait_until(lambda: s.failures >= 3 and not s.healthy, what="the sink to retry the refused XADD")
        assert redis_db.xlen("t:acl") == 100
        redis_db.execute_command("ACL", "SETUSER", "writer", "+xadd")
        for event in events[200:]:
            s.offer(event)
        wait_until(lambda: s.written + s.dropped == 300, what="every event to be accounted for")
        close(s)
        # The HA partner: a second sink offered the same 300 appends none of them again.
        partner = sink(url, name="b", batch_size=7)
        for event in events:
            partner.offer(event)
        wait_until(lambda: partner.written == 300, what="the partner to finish")
        close(partner)
    finally:
        redis_db.execute_command("ACL", "DELUSER", "writer")
    signatures = [f["signature"] for _, f in redis_db.xrange("t:acl")]
    assert (s.written, s.dropped) == (300, 0)
    assert sorted(signatures) == sorted(e.signature for e in events)  # each once, none burnt
    assert s.published == 300 and partner.deduplicated == 300
