"""Redis Streams, both ways: the source (``source.py``: ``pumpsync.connect("redis", ...)``, the
client's event feed; ``reader.py``: :class:`RedisReader`, the same on a thread of its own), the
daemon's sink (``sink.py``, loaded by the daemon only) and what they share (``_common.py``;
``_cursor.py``: the reading side's options and position). See ``source.py`` for the URL's options
and when an event counts as consumed, ``sink.py`` for the sink's.
"""

from pumpsync.providers.redis._common import (
    DEFAULT_STREAM,
    DEFAULT_URL,
    parse_url,
    positive,
    redis_client,
    require_redis,
)
from pumpsync.providers.redis._cursor import READ_BUDGET, ReaderOptions, StreamCursor
from pumpsync.providers.redis.reader import RedisReader
from pumpsync.providers.redis.source import (
    MAX_ENTRY,
    SPEC,
    RedisConsumerCollector,
    RedisDialect,
    RedisFeed,
    RedisOptions,
    event_from_entry,
)

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "MAX_ENTRY",
    "READ_BUDGET",
    "SPEC",
    "ReaderOptions",
    "RedisConsumerCollector",
    "RedisDialect",
    "RedisFeed",
    "RedisOptions",
    "RedisReader",
    "StreamCursor",
    "event_from_entry",
    "parse_url",
    "positive",
    "redis_client",
    "require_redis",
]
