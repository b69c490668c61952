"""#22.10: Redis came back with IDs behind the reader's position (an older or lost AOF, on a clock
behind the IDs read before): the reader stalled silently. Now it notices within a second, counts
it (``rewinds``), warns, and reads the stream again from its start: nothing lost."""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

import pytest
import redis
from redishelpers import RedisServer
from test_redis_source import FAST, event

from pumpsync.daemon.sinks.redis import entry_fields
from pumpsync.providers.redis import RedisReader


def add(client: Any, stream: str, i: int, entry_id: str = "*") -> None:
    fields = entry_fields(event(i))
    client.xadd(stream, dict(zip(fields[::2], fields[1::2], strict=True)), id=entry_id)


@pytest.mark.parametrize("mode", ["plain", "group"])
def test_a_stream_that_went_back_is_read_again_not_waited_for(
    redis_server: RedisServer, redis_db: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = f"t:rewind:{mode}"
    ahead = int(time.time() * 1000) + 3_600_000  # written by a Redis whose clock ran an hour ahead
    for i in range(5):
        add(redis_db, stream, i, f"{ahead + i}-0")
    options: dict[str, Any] = {"name": "r"} if mode == "plain" else {"group": "g", "consumer": "c"}
    caplog.set_level(logging.WARNING, "pumpsync")
    reader = RedisReader(f"{redis_server.url}?stream={stream}&since=0", **FAST, **options).start()
    try:
        assert [reader.get(timeout=15).signature for _ in range(5)] == [f"Sig{i}" for i in range(5)]
        # Redis comes back without its data (the AOF lost) on a clock an hour behind those IDs.
        redis_server.stop()
        shutil.rmtree(redis_server.dir / "appendonlydir", ignore_errors=True)
        redis_server.start()
        client = redis_server.client()
        if mode == "group":  # the group as it was, its last-delivered ID ahead of the clock
            try:
                client.xgroup_create(stream, "g", id=f"{ahead + 4}-0", mkstream=True)
            except redis.ResponseError:  # the reconnected reader created it first
                client.xgroup_setid(stream, "g", f"{ahead + 4}-0")
        for i in range(5, 25):
            add(client, stream, i)
        taken = [reader.get(timeout=15).signature for _ in range(20)]
        assert taken == [f"Sig{i}" for i in range(5, 25)]  # before the fix: queue.Empty, silently
        assert reader.stats()["rewinds"] == 1
        assert any("went back" in r.getMessage() for r in caplog.records)
        client.close()
    finally:
        reader.close()
