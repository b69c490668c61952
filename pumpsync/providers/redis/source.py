"""A Redis Stream as a source: the events a daemon's ``redis`` sink published, read back.

``pumpsync.connect("redis", url=...)`` / ``Client("redis", ...)`` (through :class:`RedisFeed`,
the provider's event feed) or :class:`RedisReader` (the same API on a thread of its own, no Client
machinery) give the same :class:`~pumpsync.Event` objects the daemon had.

``redis://[user:password@]host:6379/0?stream=pumpsync:events`` (``rediss://`` for TLS). Options
(query parameters of the URL; ``group``, ``consumer`` and ``name`` also as keyword arguments and
CLI flags; the other query parameters go to the ``redis`` client):

``stream``          the stream's key [pumpsync:events]
``since``           where a reader with no saved position starts: a stream ID, ``0`` (the whole
                    stream) or ``$`` (only new entries) [$]
``name``            plain mode: save the position under ``<stream>:position:<name>`` so that a
                    restarted reader resumes where it stopped
``group``           group mode: share the work among the consumers of this group (created at
                    ``since`` if missing); each entry goes to one of them
``consumer``        this member's name in the group (stable across restarts) [host-pid]
``claim_timeout``   group mode: entries another member has held this long unacknowledged are
                    claimed (``XAUTOCLAIM``): that member is taken for dead [30 s]
``batch``           entries per read, and how many wait in memory [100]

When an event counts as consumed: **asking for the next one** (``get()``, the next step of a
``for`` loop) or closing the client/reader consumes the event taken before it. Only then is the position
saved (plain mode with a ``name``) or the entry acknowledged (``XACK``, group mode), before the
next event is returned. So a consumer that crashes while handling an event gets that one event
again when it restarts (nothing before it, nothing skipped); one that stopped while waiting for
the next gets nothing twice. A group member that never comes back loses nothing: its unacknowledged
entries (the one in hand and those read ahead, up to ``batch``) go to another member after
``claim_timeout``; a member so slow that it holds an entry longer than that may see it handled
twice, so set ``claim_timeout`` well above the time ``batch`` events take. (A Client consumed through
``client.queue`` itself reports nothing: there an entry counts as consumed once it is
``queue_size`` entries behind the newest read, or in group mode once it has left the client's queue.)

Redis down: the reader reconnects with backoff (``backoff_initial``..``backoff_max``, full
jitter) and resumes from the entry after the last one read; after ``max_retries`` consecutive
failed attempts the consumer gets :class:`~pumpsync.errors.ConnectionLost`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pumpsync._bounds import event_from_record
from pumpsync._secrets import ApiKey, redact
from pumpsync.errors import AuthenticationError as RefusedKey
from pumpsync.events import Event
from pumpsync.options import ProviderOptions, option
from pumpsync.providers.base import ClosePolicy, Dialect, Handshake, Malformed, Output, Subscription
from pumpsync.providers.redis._common import DEFAULT_URL, SCHEMES
from pumpsync.providers.redis._cursor import OPTIONS, Entry, ReaderOptions, StreamCursor
from pumpsync.providers.spec import ConnectFailed, ProviderSpec, TransportClosed

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

log = logging.getLogger("pumpsync.redis")

# The largest entry handed on (the sink writes one event of a few KiB; a provider frame is at most
# 1 MiB, and its event's raw copy rides along): bigger ones are counted as oversized and skipped.
MAX_ENTRY = 2 * 1024 * 1024


# ---------------------------------------------------------------- the dialect: entries in, events out


class RedisDialect(Dialect):
    """Pure code: a stream entry's ``event`` field (the sink's JSON) in, the :class:`Event` out.

    The event keeps what the daemon recorded (its provider, ``received_at``, ``raw``...); only
    ``connection`` becomes ours, the index of the reader that delivered it."""

    provider = "redis"
    default_url = DEFAULT_URL
    close_policies: ClassVar[dict[int, ClosePolicy]] = {}

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        return Handshake(url, {})  # the credentials, if any, are in the URL (redis AUTH)

    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        if len(payload) > MAX_ENTRY:
            return [Malformed("oversized")]
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        try:
            event = event_from_record(obj)  # every field typed and bounded (a "slot": "123" is refused)
        except (TypeError, ValueError):
            return [Malformed("invalid_fields")]
        return [event._replace(connection=self.connection)]

    def entry(self, fields: Mapping[str, str] | None, received_at: int) -> list[Output]:
        """One stream entry's outputs (an entry without an ``event`` field is malformed)."""
        payload = fields.get("event") if fields else None
        if payload is None:
            return [Malformed("invalid_fields")]
        return self.receive(payload, received_at)


# ---------------------------------------------------------------- the feed (pumpsync.Client's connection thread)

Key = tuple[str | None, ...] | None  # how an entry's event is recognised when it is consumed; None: no event


class _Depth(Protocol):
    def qsize(self) -> int: ...


class RedisFeed:
    """``ProviderSpec.feed`` of the redis source: one connection slot's reads (kept across its
    sessions, so that a reconnect resumes after the last entry read), handed over as events.

    When an entry counts as consumed: the client reports each event its consumer is done with
    (:meth:`consumed`: the consumer asked for the next one, or closed the client), so the module
    docs' rule holds; the entries before it (skipped ones, or events the client dropped as
    duplicates) are consumed with it. An entry more than ``queue_size`` entries behind the newest
    one read (and the one in hand) has left the client's queue for sure (taken through
    ``client.queue`` itself, which reports nothing, or dropped as overflow): it is consumed then.
    A group member reads on only while fewer than ``batch`` of its entries wait unconsumed, so that
    the group shares the work; until its client has reported an event (a consumer of
    ``client.queue`` itself: the daemon's dispatcher, callbacks), a group member's entries count as
    consumed once their events have left the client's queue.
    """

    acknowledges: ClassVar[bool] = True

    def __init__(self, config: ClientConfig, index: int) -> None:
        given = {option: getattr(config, option, None) for option in OPTIONS}
        self.cursor = StreamCursor(ReaderOptions.build(config.url_of(index), **given), config.connect_timeout)
        self._dialect = RedisDialect(index, [])
        self._capacity = config.queue_size
        # Guards _queued and _reported between the connection thread and the consumer's; the cursor's
        # own lock is taken under it (never the other way round); no Redis call is made under it.
        self._lock = threading.Lock()
        self._queued: deque[tuple[str, Key]] = deque()  # (entry, key): handed on, not consumed; oldest first
        self._reported = False  # the client has reported a consumed event (its consumer uses get())
        self._queue: _Depth | None = None
        self._aborted = threading.Event()
        self.received_bytes = 0  # the entries' event fields, as the connection's bytes

    def bind_queue(self, queue: _Depth) -> None:
        self._queue = queue

    # -- the EventFeed protocol
    def open(self, subscriptions: list[Subscription]) -> None:
        self._aborted.clear()
        try:
            self.cursor.open()
        except self.cursor.refusals as exc:
            raise RefusedKey(f"redis refused us: {redact(str(exc))}", provider="redis") from None
        except self.cursor.errors as exc:
            raise ConnectFailed(f"redis: {redact(str(exc) or type(exc).__name__)}") from None

    def read(self) -> list[Output]:
        if self._aborted.is_set():
            raise TransportClosed("closed by the client")
        cursor = self.cursor
        batch = cursor.options.batch
        with self._lock:
            if cursor.group and not self._reported and self._queued:
                # Nobody reports (yet: the daemon's dispatcher reads client.queue itself): what has
                # left the client's queue is consumed, or a group member would hold it for ever.
                depth = self._queue.qsize() if self._queue is not None else 0
                gone = [self._queued.popleft()[0] for _ in range(len(self._queued) - depth)]
                cursor.consumed(*gone)
            waiting = len(self._queued)
            oldest = self._queued[0][0] if self._queued else None  # the consumer's place, for the lag
        try:
            if cursor.group and waiting >= batch:  # the consumer is behind: leave the rest to the group
                cursor.tend(oldest)
                self._aborted.wait(0.05)
                return []
            entries = cursor.fetch(batch - waiting if cursor.group else batch, oldest)
        except cursor.errors as exc:
            raise TransportClosed(f"redis: {redact(str(exc) or type(exc).__name__)}") from None
        return self._outputs(entries)

    def _outputs(self, entries: list[Entry]) -> list[Output]:
        received_at = int(time.time() * 1000)
        outputs: list[Output] = []
        with self._lock:
            for entry_id, fields in entries:
                if not fields:  # deleted (trimmed) while pending: nothing to hand on
                    self.cursor.consumed(entry_id)
                    continue
                payload = fields.get("event", "")
                self.received_bytes += len(payload)
                # As bytes, as a WebSocket frame would be: an entry that is not UTF-8 is refused alone.
                (out,) = self._dialect.receive(payload.encode("utf-8", "surrogateescape"), received_at)
                outputs.append(out)
                if type(out) is Event:
                    self._queued.append((entry_id, _key(out)))
                elif self.cursor.group:  # never handed on: a group acknowledges it at once
                    self.cursor.consumed(entry_id)
                else:  # a plain reader's position passes it in order, with the next event consumed
                    self._queued.append((entry_id, None))
            gone = len(self._queued) - self._capacity - 1  # the client's queue, and the one in hand
            if gone > 0:  # out of the client's queue for sure
                self.cursor.consumed(*(self._queued.popleft()[0] for _ in range(gone)))
        return outputs

    def consumed(self, event: Event) -> None:
        """Its entry, and the unconsumed ones before it, are done: committed before returning."""
        key = _key(event)
        with self._lock:
            self._reported = True
            done: list[str] = []
            for at, (_, queued_key) in enumerate(self._queued):
                if queued_key == key:
                    done = [self._queued.popleft()[0] for _ in range(at + 1)]
                    break
        if done:  # else consumed already (out of the client's queue for sure)
            self.cursor.consumed(*done)
            self.cursor.commit()

    def abort(self) -> None:
        self._aborted.set()  # a read waits at most half a second

    def shutdown(self) -> None:
        try:
            self.cursor.commit()
        except Exception:  # never raises: the next session's reads commit again
            log.debug("redis: the commit at the session's end failed", exc_info=True)

    @classmethod
    def metrics_collector(cls, feeds: Sequence[object]) -> RedisConsumerCollector:
        """A client's metrics registry picks this up (``pumpsync.metrics.extra_collectors``)."""
        return RedisConsumerCollector(feeds)


def _key(event: Event) -> tuple[str | None, ...]:
    return (event.kind, event.signature, event.mint)


class RedisConsumerCollector:
    """Prometheus metrics of redis consumers (a :class:`~pumpsync.providers.redis.RedisReader` or a
    client's :class:`RedisFeed`, each reading through a :class:`StreamCursor`):
    lag behind the stream's end, the group's pending entries, claims."""

    def __init__(self, sources: Iterable[object]) -> None:
        # A client's connection slot shows its feed as ``transport.feed`` (pumpsync/_feed_session.py).
        found = (getattr(source, "feed", source) for source in sources)
        self.sources: list[Any] = [s for s in found if isinstance(getattr(s, "cursor", None), StreamCursor)]

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["stream", "group", "consumer"]
        lag = GaugeMetricFamily(
            "pumpsync_redis_consumer_lag_seconds",
            "Age of the stream's newest entry relative to the last one consumed.",
            labels=labels,
        )
        behind = GaugeMetricFamily(
            "pumpsync_redis_consumer_lag_entries",
            "Entries not yet delivered to the group (Redis 7; group mode).",
            labels=labels,
        )
        pending = GaugeMetricFamily(
            "pumpsync_redis_consumer_pending",
            "Entries delivered to the group's members and not acknowledged.",
            labels=labels,
        )
        claimed = CounterMetricFamily("pumpsync_redis_consumer_claimed",
                                      "Entries taken over from a member that held them past claim_timeout.",
                                      labels=labels)  # fmt: skip
        for source in self.sources:
            cursor = source.cursor
            options = cursor.options
            values = [options.stream, options.group or "", options.consumer if options.group else options.name or ""]
            lag.add_metric(values, cursor.lag_seconds)
            if cursor.lag_entries is not None:
                behind.add_metric(values, float(cursor.lag_entries))
            if cursor.pending is not None:
                pending.add_metric(values, float(cursor.pending))
            claimed.add_metric(values, float(cursor.claimed))
        yield from (lag, behind, pending, claimed)


def event_from_entry(fields: Mapping[str, str]) -> Event:
    """The event of one stream entry (for scripts that read the stream themselves)."""
    return Event.from_dict(json.loads(fields["event"]))


@dataclass(frozen=True)
class RedisOptions(ProviderOptions):
    """The redis source's own options (``options=pumpsync.RedisOptions(...)``; the rest go in the URL)."""

    group: str | None = option(None, "Consumer group: the members share the stream's entries.", check="text")
    consumer: str | None = option(None, "This member's name in the consumer group.", check="text")
    name: str | None = option(None, "Save the reader's position under this name (to resume).", check="text")


SPEC = ProviderSpec(
    name="redis",
    summary="redis: a Redis Stream that pumpsync daemons' redis sink fills (pumpsync[redis]; options in the URL)",
    dialect=RedisDialect,
    default_url=DEFAULT_URL,
    url_schemes=SCHEMES,
    auth_forms=("none",),
    default_auth="none",
    key_required=False,
    heartbeat="none",  # every read is answered (at least "nothing new") within half a second
    max_connections=1,
    max_connections_reason="one reader per client: run more clients, or a group, to share the work",
    options=RedisOptions,
    feed=RedisFeed,
)


__all__ = [
    "MAX_ENTRY",
    "SPEC",
    "RedisConsumerCollector",
    "RedisDialect",
    "RedisFeed",
    "event_from_entry",
]
