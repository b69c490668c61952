"""The redis source under hostile entries (issue 22, items 7 and 12): a bad entry is one counted
skip (the batch goes on, the position passes only what was handled), entries of many MiB are
read a few at a time and refused past a bound, junk kinds never become metric series."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redishelpers import RedisServer
from test_redis_source import KINDS, connects, event, open_stream, publish, take

from pumpsync.events import KINDS as EVENT_KINDS
from pumpsync.providers.redis import MAX_ENTRY, READ_BUDGET, ReaderOptions, StreamCursor


def malformed(stream: Any) -> int:
    stats = stream.stats()
    if "malformed" in stats and isinstance(stats["malformed"], int):
        return int(stats["malformed"])
    return sum(stats["connections"][0]["malformed"].values())


def bad(i: int, **fields: Any) -> dict[str, str]:
    """An entry in the sink's shape whose event has ``fields`` changed."""
    data = {**event(i).to_dict(), **fields}
    return {"event": json.dumps(data), "provider": "anaxer", "kind": "trade", "signature": f"Sig{i}"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "change",
    [{"slot": "123456789"}, {"received_at": "2024-01-01T00:00:00Z"}, {"sol_amount": [1]}, {"raw": 5}],
    ids=["slot-string", "received-at-iso", "amount-list", "raw-int"],
)
def test_a_bad_entry_is_counted_and_skipped_and_the_rest_of_its_batch_arrives(
    redis_server: RedisServer, redis_db: Any, kind: str, change: dict[str, Any]
) -> None:
    """Before: ``"slot": "123456789"`` ended the session and the rest of its read batch was lost
    for good (its position committed)."""
    publish(redis_db, "s:bad", 0, 3)
    redis_db.xadd("s:bad", bad(99, **change))
    publish(redis_db, "s:bad", 3, 6)
    ids = [entry_id for entry_id, _ in redis_db.xrange("s:bad")]
    reader = open_stream(kind, f"{redis_server.url}?stream=s:bad&since=0&name=pos")
    with reader:
        got = take(reader, 6)
        assert got == [event(i) for i in range(6)]
        assert all(type(e.slot) is int for e in got)
        assert malformed(reader) == 1 and connects(reader) == 1
    # Everything handled, the skipped entry with it: the saved position is the last entry's.
    assert redis_db.get("s:bad:position:pos") == ids[-1]


@pytest.mark.parametrize("kind", KINDS)
def test_junk_kinds_arrive_as_unknown_and_make_no_metric_series(
    redis_server: RedisServer, redis_db: Any, kind: str
) -> None:
    """Before: 5,007 metric series from junk ``kind`` values."""
    for i in range(40):
        redis_db.xadd("s:kinds", bad(i, kind=f"junk-{i}"))
    reader = open_stream(kind, f"{redis_server.url}?stream=s:kinds&since=0")
    with reader:
        got = take(reader, 40)
        assert {e.kind for e in got} == {"unknown"} and got[0].raw["kind"] == "junk-0"
        if kind == "client":
            from prometheus_client import generate_latest

            from pumpsync.metrics import make_registry

            text = generate_latest(make_registry(reader)).decode()
            series = [line for line in text.splitlines() if line.startswith("pumpsync_events_total{")]
            assert series and all(any(f'kind="{k}"' in line for k in EVENT_KINDS) for line in series), series
            assert "junk" not in text


@pytest.mark.parametrize("kind", KINDS)
def test_an_entry_over_the_bound_is_counted_and_skipped(redis_server: RedisServer, redis_db: Any, kind: str) -> None:
    publish(redis_db, "s:big", 0, 2)
    redis_db.xadd("s:big", bad(98, raw={"blob": "x" * (MAX_ENTRY + 10)}))
    publish(redis_db, "s:big", 2, 4)
    reader = open_stream(kind, f"{redis_server.url}?stream=s:big&since=0")
    with reader:
        assert take(reader, 4) == [event(i) for i in range(4)]
        assert malformed(reader) == 1


def test_entries_of_several_mib_are_read_a_few_at_a_time(redis_server: RedisServer, redis_db: Any) -> None:
    """Before: 32 MB entries were read a batch (100) at a time (+580 MB). Now one read brings in
    at most READ_BUDGET plus one entry, whatever the batch size."""
    big = 3 * 1024 * 1024
    for i in range(6):
        redis_db.xadd("s:mib", {"event": "x" * big, "i": str(i)})
    publish(redis_db, "s:mib", 0, 50)
    options = ReaderOptions.build(f"{redis_server.url}?stream=s:mib&since=0&batch=100")
    cursor = StreamCursor(options, 5.0)
    cursor.open()
    sizes, counts = [], []
    try:
        while sum(counts) < 56:
            entries = cursor.fetch(100)
            counts.append(len(entries))
            sizes.append(sum(len(fields.get("event", "")) for _, fields in entries if fields))
    finally:
        cursor.close()
    assert max(sizes) <= READ_BUDGET + big, sizes
    assert counts[0] == 1 and max(counts[:4]) <= READ_BUDGET // big + 1, counts
    assert counts[-1] > 10, counts  # small entries again: batches again
