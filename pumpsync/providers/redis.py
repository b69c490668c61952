"""A Redis Stream as a source: the events a daemon's ``redis`` sink published, read back.

``redis://[user:password@]host:6379/0?stream=pumpsync:events`` (``rediss://`` for TLS). Options
(keyword arguments, or query parameters of the URL; the other query parameters go to the
``redis`` client):

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
``for`` loop) or closing the reader consumes the event taken before it. Only then is the position
saved (plain mode with a ``name``) or the entry acknowledged (``XACK``, group mode), before the
next event is returned. So a consumer that crashes while handling an event gets that one event
again when it restarts (nothing before it, nothing skipped); one that stopped while waiting for
the next gets nothing twice. A group member that never comes back loses nothing: its unacknowledged
entries (the one in hand and those read ahead, up to ``batch``) go to another member after
``claim_timeout``; a member so slow that it holds an entry longer than that may see it handled
twice, so set ``claim_timeout`` well above the time ``batch`` events take.

Redis down: the reader reconnects with backoff (``backoff_initial``..``backoff_max``, full
jitter) and resumes from the entry after the last one read; after ``max_retries`` consecutive
failed attempts the consumer gets :class:`~pumpsync.errors.ConnectionLost`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pumpsync._backoff import Backoff
from pumpsync._secrets import ApiKey, redact
from pumpsync._threads import join_thread
from pumpsync.errors import AuthenticationError as RefusedKey
from pumpsync.errors import ClientClosed, ConfigurationError, ConnectionLost, PumpsyncError
from pumpsync.events import Event
from pumpsync.providers.base import ClosePolicy, Dialect, Handshake, Malformed, Output

log = logging.getLogger("pumpsync.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "pumpsync:events"
SCHEMES = ("redis", "rediss")
EXTRA_HINT = "pip install 'pumpsync[redis]'"

_BLOCK = 0.5  # seconds a read waits for new entries: how soon close() is noticed
_STATS_EVERY = 1.0  # seconds between looks at the stream's end (lag) and the group's pending entries


# ---------------------------------------------------------------- shared with the sink


def require_redis(what: str = "the redis source") -> ModuleType:
    """The ``redis`` package, or an error that names the extra to install."""
    try:
        import redis
    except ImportError:
        raise ConfigurationError("redis", f"{what} needs the redis package: {EXTRA_HINT}") from None
    return redis


@dataclass(frozen=True)
class StreamURL:
    url: str  # for the redis client: our own query parameters removed
    options: dict[str, str]  # ours


def parse_url(url: str, own: tuple[str, ...]) -> StreamURL:
    """Split our query parameters (``own``) off a ``redis://`` URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError("url", f"{redact(url)!r} is not a redis:// URL") from None
    if parts.scheme not in SCHEMES or not (parts.hostname or parts.path):
        raise ConfigurationError("url", f"{redact(url)!r} is not a redis:// or rediss:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in own}
    rest = urlencode([(k, v) for k, v in query if k not in own])
    return StreamURL(urlunsplit(parts._replace(query=rest)), options)


def positive(option: str, value: Any, integer: bool = False) -> float:
    """A number >= 0 from a query parameter or a keyword argument (0 where the option is off)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (integer and not number.is_integer()):
        raise ConfigurationError(option, f"{value!r} is not a {'whole ' if integer else ''}number >= 0")
    return number


def redis_client(url: str, timeout: float, **options: Any) -> Any:
    """A client that fails fast (``timeout`` for connecting and for each reply) and never retries
    on its own: retrying is the caller's decision (a blind retry of an append could double it)."""
    redis = require_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0), **options
    )


# ---------------------------------------------------------------- the dialect: entries in, events out


class RedisDialect(Dialect):
    """Pure code: a stream entry's ``event`` field (the sink's JSON) in, the :class:`Event` out.

    The event keeps what the daemon recorded (its provider, ``received_at``, ``raw``...); only
    ``connection`` becomes ours, the index of the reader that delivered it."""

    provider = "redis"
    default_url = DEFAULT_URL
    close_policies: ClassVar[dict[int, ClosePolicy]] = {}

    def handshake(self, url: str, key: ApiKey, auth: str) -> Handshake:
        return Handshake(url, {})  # the credentials, if any, are in the URL (redis AUTH)

    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        try:
            event = Event.from_dict(obj)
        except (TypeError, ValueError):
            return [Malformed("invalid_fields")]
        return [event._replace(connection=self.connection)]

    def entry(self, fields: Mapping[str, str] | None, received_at: int) -> list[Output]:
        """One stream entry's outputs (an entry without an ``event`` field is malformed)."""
        payload = fields.get("event") if fields else None
        if payload is None:
            return [Malformed("invalid_fields")]
        return self.receive(payload, received_at)


# ---------------------------------------------------------------- the reader


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0] or 0)


class RedisReader:
    """Events from a Redis Stream, with the API of :class:`pumpsync.Client`: ``get()``, iteration,
    ``close()``, a context manager, ``stats()``. See the module docs for the options and rules."""

    _OWN: ClassVar[tuple[str, ...]] = ("stream", "since", "name", "group", "consumer", "claim_timeout", "batch")

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str | None = None,
        since: str | None = None,
        name: str | None = None,
        group: str | None = None,
        consumer: str | None = None,
        claim_timeout: float | None = None,
        batch: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_retries: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        redis = require_redis()
        parsed = parse_url(url, self._OWN)
        query = parsed.options
        self.url = parsed.url
        self.stream = stream or query.get("stream") or DEFAULT_STREAM
        self.since = str(since if since is not None else query.get("since", "$"))
        self.name = name or query.get("name") or None
        self.group = group or query.get("group") or None
        self.consumer = consumer or query.get("consumer") or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_timeout = positive("claim_timeout", claim_timeout if claim_timeout is not None
                                      else query.get("claim_timeout", "30"))  # fmt: skip
        self.batch = int(positive("batch", batch if batch is not None else query.get("batch", "100"), integer=True))
        if self.batch < 1 or self.claim_timeout <= 0:
            raise ConfigurationError("batch" if self.batch < 1 else "claim_timeout", "must be positive")
        if self.group and self.name:
            raise ConfigurationError("name", "a group keeps its own position: give a name or a group, not both")
        if self.since != "$" and not _valid_id(self.since):
            raise ConfigurationError("since", f"{self.since!r} is not a stream ID (like 1700000000000-0), 0 or $")
        if max_retries is not None and max_retries < 1:
            raise ConfigurationError("max_retries", "must be a positive whole number or None")
        self.max_retries = max_retries
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._errors = redis.RedisError
        self._refusals = (redis.AuthenticationError, redis.exceptions.AuthorizationError)
        self._redis: Any = redis_client(self.url, connect_timeout + _BLOCK, decode_responses=True)
        self._dialect = RedisDialect(0, [])
        self._queue: queue.Queue[tuple[str, Event] | PumpsyncError] = queue.Queue(self.batch)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the commit state, shared by the consumer and the reader
        self._held: set[str] = set()  # group mode: read by us, not yet acknowledged
        self._in_hand: str | None = None  # the entry of the event the consumer took last
        self._done: list[str] = []  # consumed (see the rule), not yet committed; oldest first
        self._last: str | None = None  # the newest entry read (the next read starts after it)
        self._state = "new"
        self.error: PumpsyncError | None = None
        # counters (read by stats())
        self.connects = 0
        self.failures = 0
        self.events = 0
        self.claimed = 0
        self.malformed = 0
        self.commit_failures = 0
        self.lag_seconds = 0.0
        self.lag_entries: int | None = None
        self.pending: int | None = None
        self._thread = threading.Thread(target=self._run, name="pumpsync-redis-reader", daemon=True)

    def __repr__(self) -> str:
        return f"<pumpsync.RedisReader {redact(self.url)} stream={self.stream!r} {self._state}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RedisReader:
        if self._state != "new":
            raise PumpsyncError(f"the reader is already {self._state}")
        self._state = "running"
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading; the event in hand counts as consumed (see the module docs)."""
        if self._state == "closed":
            return
        was_running, self._state = self._state == "running", "closed"
        self._stop.set()
        if was_running:
            if not join_thread(self._thread, timeout):
                log.warning("close(): the redis reader is still running after %.1f s", timeout)
            self._consumed()
        self._redis.close()
        self._put_error(ClientClosed("the reader was closed"))

    def __enter__(self) -> RedisReader:
        if self._state == "new":
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ consuming
    def get(self, timeout: float | None = None) -> Event:
        """The next event (committing the one taken before it); ``queue.Empty`` on timeout."""
        self._consumed()
        item = self._queue.get(timeout=timeout)
        if isinstance(item, PumpsyncError):
            self._put_error(item)  # keep it there for the next reader
            raise item
        entry_id, event = item
        self._in_hand = entry_id
        return event

    def __iter__(self) -> Iterator[Event]:
        while True:
            try:
                yield self.get()
            except ClientClosed:
                return

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise self.error

    @property
    def connected(self) -> bool:
        return self._state == "running" and self._healthy

    def stats(self) -> dict[str, Any]:
        return {
            "provider": "redis",
            "stream": self.stream,
            "mode": "group" if self.group else "plain",
            "events": self.events,
            "connects": self.connects,
            "failures": self.failures,
            "claimed": self.claimed,
            "malformed": self.malformed,
            "commit_failures": self.commit_failures,
            "lag_seconds": self.lag_seconds,
            "lag_entries": self.lag_entries,
            "pending": self.pending,
            "queue_depth": self._queue.qsize(),
        }

    # ------------------------------------------------------------------ committing
    def _consumed(self) -> None:
        """The consumer is done with the event in hand: commit it before handing out another."""
        entry_id, self._in_hand = self._in_hand, None
        if entry_id is not None:
            with self._lock:
                self._done.append(entry_id)
        self._commit()

    def _commit(self) -> None:
        """Save the position / acknowledge the consumed entries (any thread; a failure is retried)."""
        with self._lock:
            taken = list(self._done)
            if not taken:
                return
            try:
                if self.group:
                    self._redis.xack(self.stream, self.group, *taken)
                elif self.name:
                    self._redis.set(self._position_key, taken[-1])
            except self._errors as exc:  # the reader thread (or the next get) tries again
                self.commit_failures += 1
                log.debug("commit failed: %s", exc)
                return
            del self._done[: len(taken)]
            self._held.difference_update(taken)

    @property
    def _position_key(self) -> str:
        return f"{self.stream}:position:{self.name}"

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._session()
            except self._refusals as exc:
                self._fail(RefusedKey(f"redis refused us: {redact(str(exc))}", provider="redis"))
                return
            except self._errors as exc:
                self.failures += 1
                failures = 0 if self._healthy else failures + 1
                if self.max_retries is not None and failures > self.max_retries:
                    detail = redact(str(exc) or type(exc).__name__)
                    message = f"gave up after {self.max_retries} reconnection attempts (last: {detail})"
                    self._fail(ConnectionLost(message))
                    return
                delay = self._backoff.delay()
                log.warning("redis reader: %s; reconnecting in %.2f s", redact(str(exc) or type(exc).__name__), delay)
                self._stop.wait(delay)

    def _session(self) -> None:
        self._healthy = False
        self._redis.ping()
        if self.group:
            self._setup_group()
        elif self._last is None:
            self._last = self._start_position()
        self.connects += 1
        self._healthy = True
        self._backoff.reset()
        own_backlog = bool(self.group)  # after a (re)start, our own unacknowledged entries first
        next_claim = next_stats = 0.0
        while not self._stop.is_set():
            self._commit()
            now = time.monotonic()
            if now >= next_stats:
                self._look_at_the_end()
                next_stats = now + _STATS_EVERY
            if self.group and now >= next_claim and not own_backlog:
                self._claim()
                next_claim = now + max(0.05, self.claim_timeout / 4)
            if self._queue.full():  # the consumer is behind: Redis keeps what it has not taken
                self._stop.wait(0.01)
                continue
            room = self.batch - self._queue.qsize()
            if self.group and own_backlog:
                entries = self._read_group("0" if self._last is None else self._last, room, block=None)
                own_backlog = bool(entries)
                if not entries:
                    self._last = None
            elif self.group:
                entries = self._read_group(">", room, block=int(_BLOCK * 1000))
            else:
                entries = self._read(room)
            self._hand_on(entries)

    def _start_position(self) -> str:
        """Plain mode: the saved position, else ``since`` ($ resolved now, so a reconnect leaves no gap)."""
        if self.name:
            saved = self._redis.get(self._position_key)
            if saved:
                return str(saved)
        if self.since != "$":
            return self.since
        try:
            info = self._redis.xinfo_stream(self.stream)
        except self._errors as exc:
            if "no such key" not in str(exc).lower():
                raise
            return "0-0"  # no stream yet: everything it will hold is new
        return str(info["last-generated-id"])

    def _setup_group(self) -> None:
        try:
            self._redis.xgroup_create(self.stream, self.group, id=self.since, mkstream=True)
        except self._errors as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._last = None

    def _read(self, count: int) -> list[tuple[str, dict[str, str] | None]]:
        assert self._last is not None
        answer = self._redis.xread({self.stream: self._last}, count=count, block=int(_BLOCK * 1000))
        return list(answer[0][1]) if answer else []

    def _read_group(self, start: str, count: int, block: int | None) -> list[tuple[str, dict[str, str] | None]]:
        answer = self._redis.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block)
        entries = list(answer[0][1]) if answer else []
        if start != ">" and entries:
            self._last = entries[-1][0]  # the next page of our backlog starts after this one
        return entries

    def _claim(self) -> None:
        """Take over the entries a member has held too long (it is gone)."""
        start = "0-0"
        while not self._stop.is_set():
            room = self.batch - self._queue.qsize()
            if room <= 0:
                return
            answer = self._redis.xautoclaim(
                self.stream, self.group, self.consumer, int(self.claim_timeout * 1000), start_id=start, count=room
            )
            start, entries = answer[0], answer[1]
            self.claimed += self._hand_on(entries)
            if start in ("0-0", b"0-0"):
                return

    def _hand_on(self, entries: list[tuple[str, dict[str, str] | None]]) -> int:
        """Queue the entries' events; how many were queued."""
        received_at = int(time.time() * 1000)
        queued = 0
        for entry_id, fields in entries:
            if self.group:
                with self._lock:
                    if entry_id in self._held:  # ours already (re-read from our backlog, or re-claimed)
                        continue
                    self._held.add(entry_id)
            if not self.group:
                self._last = entry_id
            outputs = self._dialect.entry(fields, received_at)
            events = [out for out in outputs if type(out) is Event]
            if len(events) != 1:  # deleted (trimmed) while pending, or not the sink's: skip it for good
                self.malformed += fields is not None
                if self.group:
                    self._redis.xack(self.stream, self.group, entry_id)
                    with self._lock:
                        self._held.discard(entry_id)
                continue
            self.events += 1
            queued += 1
            self._queue.put((entry_id, events[0]))
        return queued

    def _look_at_the_end(self) -> None:
        """Lag behind the stream's newest entry and, in group mode, the group's pending entries."""
        try:
            info = self._redis.xinfo_stream(self.stream)
        except self._errors:
            return  # no stream yet
        newest = str(info["last-generated-id"])
        first = info.get("first-entry")
        oldest = str(first[0]) if first else newest  # from "0": the whole stream is behind us
        with self._lock:
            mine = self._in_hand or (self._done[-1] if self._done else None)
        if self.group:
            for group in self._redis.xinfo_groups(self.stream):
                if group["name"] == self.group:
                    self.pending = int(group["pending"])
                    lag = group.get("lag")
                    self.lag_entries = None if lag is None else int(lag) + self._queue.qsize()
                    mine = mine or str(group["last-delivered-id"])
        else:
            mine = mine or self._last
        self.lag_seconds = max(0, _ms(newest) - max(_ms(mine or newest), _ms(oldest) - 1)) / 1000.0

    # ------------------------------------------------------------------ errors
    _healthy = False

    def _fail(self, error: PumpsyncError) -> None:
        self.error = error
        log.error("%s", error)
        self._put_error(error)

    def _put_error(self, error: PumpsyncError) -> None:
        # Errors bypass the bound: the queue may be full of events the consumer has not taken.
        with self._queue.mutex:
            self._queue.queue.append(error)
            self._queue.unfinished_tasks += 1
            self._queue.not_empty.notify()


class RedisReaderCollector:
    """Prometheus metrics of redis readers: lag behind the stream's end, the group's pending entries."""

    def __init__(self, readers: list[RedisReader]) -> None:
        self.readers = readers

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
        for reader in self.readers:
            values = [reader.stream, reader.group or "", reader.consumer if reader.group else reader.name or ""]
            lag.add_metric(values, reader.lag_seconds)
            if reader.lag_entries is not None:
                behind.add_metric(values, float(reader.lag_entries))
            if reader.pending is not None:
                pending.add_metric(values, float(reader.pending))
            claimed.add_metric(values, float(reader.claimed))
        yield from (lag, behind, pending, claimed)


def _valid_id(text: str) -> bool:
    ms, sep, seq = text.partition("-")
    return ms.isdigit() and (not sep or seq.isdigit())


def event_from_entry(fields: Mapping[str, str]) -> Event:
    """The event of one stream entry (for scripts that read the stream themselves)."""
    return Event.from_dict(json.loads(fields["event"]))


__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "RedisDialect",
    "RedisReader",
    "RedisReaderCollector",
    "event_from_entry",
    "parse_url",
    "redis_client",
    "require_redis",
]
