"""The daemon's ``redis://`` sink: the redis package's sink (``pumpsync/providers/redis/sink.py``)."""

from pumpsync.providers.redis.sink import RedisSink, RedisSinkCollector, entry_fields

__all__ = ["RedisSink", "RedisSinkCollector", "entry_fields"]
