"""A Redis Stream as a sink: every event appended (``XADD``), in batches, with bounded retention.

``redis://[user:password@]host:6379/0?stream=pumpsync:events&maxlen=1000000`` (``rediss://`` for
TLS). Query parameters of ours (the others go to the ``redis`` client):

``stream``   the stream's key [pumpsync:events]
``maxlen``   keep about this many entries (``XTRIM MAXLEN ~``)
``max_age``  keep about this many seconds of entries (``XTRIM MINID ~``)
``dedup``    the de-duplication window in seconds [120]; 0 turns it off

Each entry's ``event`` field is the event's JSON (exactly ``to_dict()``, as the JSONL sink writes
it); ``kind``, ``provider``, ``channel``, ``mint``, ``signature``, ``slot`` and ``side`` are there
too (where not ``None``) for consumers that filter.

Exactly once from an HA pair: with ``dedup`` on, one Lua script (``EVALSHA``) per batch appends
an event only if its identity (:attr:`Event.identity`) was not appended during the last ``dedup``
seconds, atomically, so whichever daemon's batch reaches Redis first appends it and the other's
copy is counted as ``deduplicated``. The identities live in a sorted set ``<stream>:dedup``
(:func:`identity_key`'s 64-character digests scored by Redis's own clock, trimmed on every
batch): memory about 130 bytes per event of the window (120 s at 2,000 events/s: 31 MB).
Events without an identity (``unknown`` ones) are keyed by their raw content. A retried batch
is idempotent too; with ``dedup=0`` (plain pipelined ``XADD``) a batch retried after a
connection dropped mid-way may append some events twice.

Redis down: the batch in hand is retried with backoff until Redis answers or the daemon's drain
deadline passes; meanwhile events wait in the buffer up to ``buffer``, and the ones beyond it are
refused and counted (``dropped``). The dispatcher and the other sinks never wait.

The daemon's sink registry (``pumpsync/daemon/sinks/``) loads it from there (``sinks/redis.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from pumpsync._secrets import safe_url
from pumpsync.daemon.sinks.base import Sink, event_json, identity_key
from pumpsync.events import Event
from pumpsync.providers.redis._common import DEFAULT_STREAM, parse_url, positive, redis_client, require_redis

DEFAULT_DEDUP = 120.0  # seconds

# KEYS: the stream, its de-duplication set. ARGV: window ms, maxlen, max age ms, then per event
# its identity digest ('' for none), its field count and its fields. Returns how many were appended.
# A command refused mid-batch ends the script with that error: the events before it are appended
# and marked, the rest neither, so the retried batch appends exactly what is missing.
_APPEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
if window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
end
local i, added = 4, 0
while i <= #ARGV do
  local identity, n = ARGV[i], tonumber(ARGV[i + 1])
  local dedup = identity ~= '' and window > 0
  if not (dedup and redis.call('ZSCORE', KEYS[2], identity)) then
    -- XADD first, the mark after it: a refused XADD (an ACL, OOM) ends the script before the
    -- mark, and Redis does not roll back a script's earlier writes, so a mark set first would
    -- make every retry (and an HA partner) skip an event that never reached the stream.
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 2, i + 1 + n))
    if dedup then redis.call('ZADD', KEYS[2], now, identity) end
    added = added + 1
  end
  i = i + 2 + n
end
local maxlen, age = tonumber(ARGV[2]), tonumber(ARGV[3])
if maxlen > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen) end
if age > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', (now - age) .. '-0') end
return added
"""

# The fields besides ``event`` that consumers may filter on (with XRANGE and a script, say).
_FILTER_FIELDS = ("kind", "provider", "channel", "mint", "signature", "slot", "side")


def entry_fields(event: Event) -> list[str]:
    """The stream entry of ``event`` as a flat field/value list."""
    out = ["event", event_json(event)]
    for key in _FILTER_FIELDS:
        value = getattr(event, key)
        if value is not None:
            out += [key, str(value)]
    return out


def _entry(event: Event) -> tuple[str, list[str]]:
    return identity_key(event), entry_fields(event)


class RedisSink(Sink):
    """Appends events to a Redis Stream; see the module docs for the URL and the guarantees."""

    kind = "redis"
    # A batch is kept and retried until Redis answers (or the drain deadline passes): the buffer fills
    # meanwhile, and what does not fit is counted as dropped. Identity-keyed appends make retries safe.
    attempts = 1_000_000
    _OWN: ClassVar[tuple[str, ...]] = ("stream", "maxlen", "max_age", "dedup")

    def __init__(self, name: str, url: str, *, timeout: float = 5.0, **options: Any) -> None:
        options.setdefault("retry_max", 5.0)  # Redis comes back within seconds (a restart, a failover)
        super().__init__(name, **options)
        require_redis("the redis sink")
        parsed = parse_url(url, self._OWN)
        self._url = parsed.url
        self.stream = parsed.options.get("stream") or DEFAULT_STREAM
        self.maxlen = int(positive("maxlen", parsed.options.get("maxlen", "0"), integer=True))
        self.max_age = positive("max_age", parsed.options.get("max_age", "0"))
        self.dedup = positive("dedup", parsed.options.get("dedup", str(DEFAULT_DEDUP)))
        self.timeout = timeout
        self._redis: Any = None
        self._script: Any = None
        self._published = 0
        self._deduplicated = 0

    # ------------------------------------------------------------------ counters beyond the base's
    @property
    def published(self) -> int:
        """Events appended to the stream (``written`` counts those of the other daemon too)."""
        return self._published

    @property
    def deduplicated(self) -> int:
        """Events not appended: the same identity was appended within the window."""
        return self._deduplicated

    def describe(self) -> str:
        return f"redis {safe_url(self._url)} stream {self.stream}"

    @classmethod
    def metrics_collector(cls, sinks: Sequence[object]) -> RedisSinkCollector:
        """The daemon's metrics registry picks this up (``pumpsync.metrics.extra_collectors``)."""
        return RedisSinkCollector(sinks)

    # ------------------------------------------------------------------ the Sink hooks
    def open(self) -> None:
        # No connection yet: an unreachable Redis at start-up is an outage like any other.
        self._redis = redis_client(self._url, self.timeout)
        self._script = self._redis.register_script(_APPEND)

    def write(self, batch: list[Event]) -> int | None:
        encoded = list(self.encode_each(batch, _entry))  # an event that cannot be encoded costs only itself
        if self.dedup > 0:
            args: list[Any] = [int(self.dedup * 1000), self.maxlen, int(self.max_age * 1000)]
            for identity, fields in encoded:
                args += [identity, len(fields), *fields]
            added = int(self._script(keys=[self.stream, f"{self.stream}:dedup"], args=args))
        else:
            pipe = self._redis.pipeline(transaction=False)
            for _, fields in encoded:
                pipe.xadd(self.stream, dict(zip(fields[::2], fields[1::2], strict=True)))
            if self.maxlen:
                pipe.xtrim(self.stream, maxlen=self.maxlen, approximate=True)
            if self.max_age:
                pipe.xtrim(self.stream, minid=f"{int((time.time() - self.max_age) * 1000)}-0", approximate=True)
            pipe.execute()
            added = len(encoded)
        self._published += added
        self._deduplicated += len(encoded) - added
        return None if len(encoded) == len(batch) else len(encoded)

    def close_resources(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            client.close()


class RedisSinkCollector:
    """Prometheus metrics only redis sinks have (the base sink metrics cover buffered and failures).

    ``registry.register(RedisSinkCollector(sinks))`` next to the pumpsync collector."""

    def __init__(self, sinks: Sequence[object]) -> None:
        self.sinks = [sink for sink in sinks if isinstance(sink, RedisSink)]

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        if not self.sinks:
            return
        for name, doc, attr in (
            ("pumpsync_redis_sink_published", "Events a redis sink appended to its stream.", "published"),
            ("pumpsync_redis_sink_deduplicated",
             "Events a redis sink did not append: the same identity was appended within the window.", "deduplicated"),
        ):  # fmt: skip
            family = CounterMetricFamily(name, doc, labels=["sink"])
            for sink in self.sinks:
                family.add_metric([sink.name], float(getattr(sink, attr)))
            yield family


__all__ = ["RedisSink", "RedisSinkCollector", "entry_fields"]
