"""A Redis Stream as a source: the events a daemon's ``redis`` sink published, read back.

``pumpsync.connect("redis", url=...)`` / ``Client("redis", ...)`` (through :class:`RedisTransport`,
the provider registry's transport seam) or :class:`RedisReader` (the same API on a thread of its
own, no Client machinery) give the same :class:`~pumpsync.Event` objects the daemon had.

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
``client.queue`` itself reports no takes: there an entry counts as consumed once it is
``queue_size`` entries behind the newest read, or in group mode once it is in the client's queue.)

Redis down: the reader reconnects with backoff (``backoff_initial``..``backoff_max``, full
jitter) and resumes from the entry after the last one read; after ``max_retries`` consecutive
failed attempts the consumer gets :class:`~pumpsync.errors.ConnectionLost`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pumpsync._backoff import Backoff
from pumpsync._bounds import event_from_record
from pumpsync._secrets import ApiKey, redact, remember_url, safe_url
from pumpsync._threads import join_thread
from pumpsync.errors import AuthenticationError as RefusedKey
from pumpsync.errors import ClientClosed, ConfigurationError, ConnectionLost, PumpsyncError
from pumpsync.events import Event
from pumpsync.options import ProviderOptions, option
from pumpsync.providers.base import ClosePolicy, Dialect, Handshake, Malformed, Output, opt_str
from pumpsync.providers.spec import OP_TEXT, ConnectFailed, ProviderSpec, TransportClosed, UpgradeRefused

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

log = logging.getLogger("pumpsync.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "pumpsync:events"
SCHEMES = ("redis", "rediss")
EXTRA_HINT = "pip install 'pumpsync[redis]'"

_BLOCK = 0.5  # seconds a read waits for new entries: how soon close() is noticed
_STATS_EVERY = 1.0  # seconds between looks at the stream's end (lag) and the group's pending entries
# The largest entry handed on (the sink writes one event of a few KiB; a provider frame is at most
# 1 MiB, and its event's raw copy rides along): bigger ones are counted as oversized and skipped.
MAX_ENTRY = 2 * 1024 * 1024


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


# ---------------------------------------------------------------- options and the cursor

READ_BUDGET = 8 * 1024 * 1024  # bytes one read may bring in (entries of several MiB: fewer per read)

Entry = tuple[str, "Mapping[str, str] | None"]  # (stream ID, fields); fields None: deleted while pending
OPTIONS = ("stream", "since", "name", "group", "consumer", "claim_timeout", "batch")


def _size(fields: Mapping[str, str] | None) -> int:
    return sum(len(k) + len(v) for k, v in fields.items()) if fields else 0


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0] or 0)


def _id(entry_id: str) -> tuple[int, int]:
    """A stream ID as a comparable (ms, seq); an unparsable one as (0, 0)."""
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and (seq or "0").isdigit() else (0, 0)


def _valid_id(text: str) -> bool:
    ms, sep, seq = text.partition("-")
    return ms.isdigit() and (not sep or seq.isdigit())


@dataclass(frozen=True)
class ReaderOptions:
    """What to read and how (see the module docs); keyword arguments win over the URL's query."""

    url: str = field(repr=False)  # for the redis client (our query parameters removed); may hold a password
    stream: str
    since: str
    name: str | None
    group: str | None
    consumer: str
    claim_timeout: float
    batch: int

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "url")
        return f"ReaderOptions(url={safe_url(self.url)!r}, {shown})"

    @classmethod
    def build(cls, url: str, **given: Any) -> ReaderOptions:
        remember_url(url)  # its password never reaches a log record
        parsed = parse_url(url, OPTIONS)
        values = {**parsed.options, **{k: v for k, v in given.items() if v is not None}}
        unknown = set(values) - set(OPTIONS)
        if unknown:
            raise ConfigurationError(sorted(unknown)[0], "no such option")
        options = cls(
            url=parsed.url,
            stream=str(values.get("stream") or DEFAULT_STREAM),
            since=str(values.get("since", "$")),
            name=values.get("name") or None,
            group=values.get("group") or None,
            consumer=str(values.get("consumer") or f"{socket.gethostname()}-{os.getpid()}"),
            claim_timeout=positive("claim_timeout", values.get("claim_timeout", 30)),
            batch=int(positive("batch", values.get("batch", 100), integer=True)),
        )
        if options.batch < 1 or options.claim_timeout <= 0:
            raise ConfigurationError("batch" if options.batch < 1 else "claim_timeout", "must be positive")
        if options.group and options.name:
            raise ConfigurationError("name", "a group keeps its own position: give a name or a group, not both")
        if options.since != "$" and not _valid_id(options.since):
            raise ConfigurationError("since", f"{options.since!r} is not a stream ID (like 1700000000000-0), 0 or $")
        return options


class StreamCursor:
    """The Redis side of reading: where we are, what we hold, what is committed.

    One thread calls :meth:`open` and :meth:`fetch`; :meth:`consumed` and :meth:`commit` may be
    called from another (the consumer's)."""

    def __init__(self, options: ReaderOptions, timeout: float) -> None:
        redis = require_redis()
        self.options = options
        self.errors = redis.RedisError
        self.refusals = (redis.AuthenticationError, redis.exceptions.AuthorizationError)
        # An entry that is not UTF-8 must not fail the whole read (and the reads after it): its bytes
        # come through as surrogate escapes, which the dialect refuses as invalid_utf8, alone.
        self.redis: Any = redis_client(
            options.url, timeout + _BLOCK, decode_responses=True, encoding_errors="surrogateescape"
        )
        self.group = options.group
        self._lock = threading.Lock()
        self._held: set[str] = set()  # group mode: read by us, not yet acknowledged
        self._done: list[str] = []  # consumed, not yet committed; oldest first
        self._last: str | None = None  # plain: the newest entry read; group: our backlog's page
        self._backlog = False
        self._cap = 1  # entries per read at most: READ_BUDGET over the largest entry of the last read
        self._next_claim = self._next_stats = 0.0
        self.connects = 0
        self.claimed = 0
        self.commit_failures = 0
        self.rewinds = 0  # the stream went back behind our position (see _rewind_if_behind)
        self.lag_seconds = 0.0
        self.lag_entries: int | None = None
        self.pending: int | None = None

    @property
    def position_key(self) -> str:
        return f"{self.options.stream}:position:{self.options.name}"

    def open(self) -> None:
        """(Re)connect: the group exists (our own unacknowledged entries come first), or the position is known."""
        options = self.options
        self.redis.ping()
        if self.group:
            try:
                self.redis.xgroup_create(options.stream, self.group, id=options.since, mkstream=True)
            except self.errors as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._last, self._backlog = None, True
        elif self._last is None:
            self._last = self._start_position()
        self.connects += 1

    def _start_position(self) -> str:
        """Plain mode: the saved position, else ``since`` ($ resolved now, so a reconnect leaves no gap)."""
        if self.options.name:
            saved = self.redis.get(self.position_key)
            if saved:
                return str(saved)
        if self.options.since != "$":
            return self.options.since
        try:
            info = self.redis.xinfo_stream(self.options.stream)
        except self.errors as exc:
            if "no such key" not in str(exc).lower():
                raise
            return "0-0"  # no stream yet: everything it will hold is new
        return str(info["last-generated-id"])

    def fetch(self, room: int, in_hand: str | None = None) -> list[Entry]:
        """The next entries (at most ``room``) new to us; waits up to half a second for them.

        Memory is bounded by size as well as by count: a read takes as many entries as
        ``READ_BUDGET`` holds of the largest one of the read before (one, the first time), so that a
        stream of 32 MiB entries is read one at a time while one of small events reads full batches."""
        entries = self._fetch(max(1, min(room, self._cap)), in_hand)
        if entries:
            self._cap = max(1, READ_BUDGET // max(1, max(_size(fields) for _, fields in entries)))
        return entries

    def _fetch(self, room: int, in_hand: str | None) -> list[Entry]:
        now = self.tend(in_hand)
        stream, group = self.options.stream, self.group
        if group is None:
            assert self._last is not None
            answer = self.redis.xread({stream: self._last}, count=room, block=int(_BLOCK * 1000))
            entries: list[Entry] = list(answer[0][1]) if answer else []
            if entries:
                self._last = entries[-1][0]
            return entries
        if self._backlog:  # ours from before a restart or a reconnect, a page at a time
            answer = self.redis.xreadgroup(group, self.options.consumer, {stream: self._last or "0"}, count=room)
            entries = list(answer[0][1]) if answer else []
            self._backlog = bool(entries)
            self._last = entries[-1][0] if entries else None
            return self._new_to_us(entries)
        if now >= self._next_claim:
            self._next_claim = now + max(0.05, self.options.claim_timeout / 4)
            claimed = self._claim(room)
            if claimed:
                return claimed
        answer = self.redis.xreadgroup(
            group, self.options.consumer, {stream: ">"}, count=room, block=int(_BLOCK * 1000)
        )
        return self._new_to_us(list(answer[0][1]) if answer else [])

    def tend(self, in_hand: str | None = None) -> float:
        """Commit what is due and, every second, look at the stream's end; returns the monotonic time."""
        self.commit()
        now = time.monotonic()
        if now >= self._next_stats:
            self._look_at_the_end(in_hand)
            self._next_stats = now + _STATS_EVERY
        return now

    def _claim(self, room: int) -> list[Entry]:
        """Entries a member has held past ``claim_timeout`` (it is gone), now ours."""
        answer = self.redis.xautoclaim(
            self.options.stream, self.group, self.options.consumer, int(self.options.claim_timeout * 1000), count=room
        )
        entries = self._new_to_us(list(answer[1]))
        self.claimed += len(entries)
        return entries

    def _new_to_us(self, entries: list[Entry]) -> list[Entry]:
        with self._lock:
            fresh = [entry for entry in entries if entry[0] not in self._held]  # not re-read, not re-claimed
            self._held.update(entry[0] for entry in fresh)
        return fresh

    def consumed(self, *entry_ids: str) -> None:
        """Mark entries done (committed by the next :meth:`commit`)."""
        with self._lock:
            self._done.extend(entry_ids)

    def commit(self) -> None:
        """Save the position / acknowledge the consumed entries; a failure is retried by the next call."""
        with self._lock:
            done = list(self._done)
            if not done:
                return
            try:
                if self.group:
                    self.redis.xack(self.options.stream, self.group, *done)
                elif self.options.name:
                    self.redis.set(self.position_key, done[-1])
            except self.errors as exc:
                self.commit_failures += 1
                log.debug("commit failed: %s", exc)
                return
            del self._done[: len(done)]
            self._held.difference_update(done)

    def _look_at_the_end(self, in_hand: str | None) -> None:
        """Lag behind the stream's newest entry and, in group mode, the group's pending entries."""
        try:
            info = self.redis.xinfo_stream(self.options.stream)
        except self.errors:
            return  # no stream yet
        newest = str(info["last-generated-id"])
        self._rewind_if_behind(newest)
        first = info.get("first-entry")
        oldest = str(first[0]) if first else newest  # from "0": the whole stream is behind us
        with self._lock:
            mine = in_hand or (self._done[-1] if self._done else None)
        if self.group:
            for group in self.redis.xinfo_groups(self.options.stream):
                if group["name"] == self.group:
                    self.pending = int(group["pending"])
                    lag = group.get("lag")
                    self.lag_entries = None if lag is None else int(lag)
                    mine = mine or str(group["last-delivered-id"])
        else:
            mine = mine or self._last
        self.lag_seconds = max(0, _ms(newest) - max(_ms(mine or newest), _ms(oldest) - 1)) / 1000.0

    def _rewind_if_behind(self, newest: str) -> None:
        """The stream's newest ID is behind our position: Redis came back with an older or empty
        data set (a lost AOF, a failover to a replica behind) on a clock behind the IDs we read.
        XREAD from our position would wait silently until the clock passes it, so we re-read the
        stream from its start: nothing lost, what we had read before is delivered again (at least
        once; a Client drops the identities it has seen). Counted (``rewinds``) and warned."""
        if self.group:
            behind = [g for g in self.redis.xinfo_groups(self.options.stream)
                      if g["name"] == self.group and _id(str(g["last-delivered-id"])) > _id(newest)]  # fmt: skip
            if not behind:
                return
            position = str(behind[0]["last-delivered-id"])
            self.redis.xgroup_setid(self.options.stream, self.group, "0")
        else:
            if self._last is None or _id(self._last) <= _id(newest):
                return
            position, self._last = self._last, "0-0"
        self.rewinds += 1
        log.warning("redis stream %s went back: its newest ID %s is behind our position %s (Redis restarted with "
                    "older data?); reading it again from its start", self.options.stream, newest, position)  # fmt: skip

    def close(self) -> None:
        self.redis.close()


# ---------------------------------------------------------------- the reader (a thread of its own)


class RedisReader:
    """Events from a Redis Stream, with the API of :class:`pumpsync.Client`: ``get()``, iteration,
    ``close()``, a context manager, ``stats()``. See the module docs for the options and rules."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_retries: int | None = None,
        connect_timeout: float = 5.0,
        **options: Any,
    ) -> None:
        self.options = ReaderOptions.build(url, **options)
        if max_retries is not None and max_retries < 1:
            raise ConfigurationError("max_retries", "must be a positive whole number or None")
        self.max_retries = max_retries
        self.cursor = StreamCursor(self.options, connect_timeout)
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._dialect = RedisDialect(0, [])
        self._queue: queue.Queue[tuple[str, Event] | PumpsyncError] = queue.Queue(self.options.batch)
        self._stop = threading.Event()
        self._in_hand: str | None = None  # the entry of the event the consumer took last
        self._healthy = False
        self._state = "new"
        self.error: PumpsyncError | None = None
        self.failures = 0
        self.events = 0
        self.malformed = 0
        self._thread = threading.Thread(target=self._run, name="pumpsync-redis-reader", daemon=True)

    def __repr__(self) -> str:
        return f"<pumpsync.RedisReader {safe_url(self.options.url)} stream={self.options.stream!r} {self._state}>"

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
        self.cursor.close()
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

    def _consumed(self) -> None:
        """The consumer is done with the event in hand: commit it before handing out another."""
        entry_id, self._in_hand = self._in_hand, None
        if entry_id is not None:
            self.cursor.consumed(entry_id)
        self.cursor.commit()

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
        cursor = self.cursor
        return {
            "provider": "redis",
            "stream": self.options.stream,
            "mode": "group" if self.options.group else "plain",
            "events": self.events,
            "connects": cursor.connects,
            "failures": self.failures,
            "claimed": cursor.claimed,
            "malformed": self.malformed,
            "commit_failures": cursor.commit_failures,
            "rewinds": cursor.rewinds,
            "lag_seconds": cursor.lag_seconds,
            "lag_entries": cursor.lag_entries,
            "pending": cursor.pending,
            "queue_depth": self._queue.qsize(),
        }

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        failures = 0
        cursor = self.cursor
        while not self._stop.is_set():
            try:
                self._healthy = False
                cursor.open()
                self._healthy = True
                self._backoff.reset()
                while not self._stop.is_set():
                    room = self.options.batch - self._queue.qsize()
                    if room <= 0:  # the consumer is behind: Redis keeps what it has not taken
                        cursor.tend(self._in_hand)
                        self._stop.wait(0.01)
                        continue
                    self._hand_on(cursor.fetch(room, self._in_hand))
            except cursor.refusals as exc:
                self._fail(RefusedKey(f"redis refused us: {redact(str(exc))}", provider="redis"))
                return
            except cursor.errors as exc:
                self.failures += 1
                failures = 0 if self._healthy else failures + 1
                detail = redact(str(exc) or type(exc).__name__)
                if self.max_retries is not None and failures > self.max_retries:
                    self._fail(
                        ConnectionLost(f"gave up after {self.max_retries} reconnection attempts (last: {detail})")
                    )
                    return
                delay = self._backoff.delay()
                log.warning("redis reader: %s; reconnecting in %.2f s", detail, delay)
                self._stop.wait(delay)
            except Exception as exc:  # a bug, or an answer nobody foresaw: loud, never a silent dead thread
                log.exception("redis reader: unexpected %s", type(exc).__name__)
                self._fail(ConnectionLost(f"the reader stopped: {type(exc).__name__}: {redact(str(exc))[:200]}"))
                return

    def _hand_on(self, entries: list[Entry]) -> None:
        received_at = int(time.time() * 1000)
        for entry_id, fields in entries:
            outputs = self._dialect.entry(fields, received_at)
            if len(outputs) != 1 or type(outputs[0]) is not Event:
                # Deleted (trimmed) while pending, or not the sink's: never handed on. A group acknowledges
                # it at once; a plain reader's position passes it with the next event consumed.
                self.malformed += fields is not None
                if self.options.group:
                    self.cursor.consumed(entry_id)
                continue
            self.events += 1
            self._queue.put((entry_id, outputs[0]))

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


# ---------------------------------------------------------------- the transport (pumpsync.Client's connection thread)


class RedisTransport:
    """``ProviderSpec.transport`` of the redis source: reads of one connection slot (kept across its
    sessions, so that a reconnect resumes after the last entry read), as text frames (the entries'
    ``event`` fields) for :class:`RedisDialect`.

    When an entry counts as consumed: ``Client.get()`` (and iteration) reports each event it
    returns (:meth:`taken`), so the module docs' rule holds — the event in hand is consumed when
    the next one is taken or the client is closed. An entry more than ``queue_size`` entries
    behind the newest one read has left the client's queue for sure (taken through
    ``client.queue`` itself, which reports nothing, or dropped as overflow): it is consumed then.
    A group member reads on only while fewer than ``batch`` of its events wait untaken, so that
    the group shares the work; until its client has reported a take (a consumer of
    ``client.queue`` itself, the daemon's dispatcher), a group member's entries count as consumed
    once handed on to the client's queue.
    """

    def __init__(self, config: ClientConfig, index: int) -> None:
        given = {option: getattr(config, option, None) for option in OPTIONS}
        self.cursor = StreamCursor(ReaderOptions.build(config.url_of(index), **given), config.connect_timeout)
        self._capacity = config.queue_size
        self._lock = threading.Lock()
        self._queued: deque[tuple[str, tuple[str | None, ...]]] = deque()  # (entry, key): handed on, not taken
        self._in_hand: str | None = None
        self._reported = False  # the client has reported a take (its consumer uses get())
        self._aborted = threading.Event()

    # -- the Transport protocol
    def open(self, url: str, headers: Mapping[str, str]) -> None:
        self._aborted.clear()
        try:
            self.cursor.open()
        except self.cursor.refusals:
            raise UpgradeRefused(401, {}) from None  # the client's refusal: an authentication error
        except self.cursor.errors as exc:
            raise ConnectFailed(f"redis: {redact(str(exc) or type(exc).__name__)}") from None

    def read(self) -> tuple[int, Iterable[tuple[int, bytes]]]:
        if self._aborted.is_set():
            raise TransportClosed("closed by the client")
        cursor = self.cursor
        batch = cursor.options.batch
        with self._lock:
            if cursor.group and not self._reported and self._queued:
                # Nobody reports takes (yet: the daemon's dispatcher reads client.queue itself): a
                # group member's entries count as consumed once handed on, or it would hold them.
                cursor.consumed(*(entry for entry, _ in self._queued))
                self._queued.clear()
            waiting = len(self._queued)
        try:
            if cursor.group and waiting >= batch:  # the consumer is behind: leave the rest to the group
                cursor.tend(self._in_hand)
                self._aborted.wait(0.05)
                return 1, ()
            entries = cursor.fetch(batch - waiting if cursor.group else batch, self._in_hand)
        except cursor.errors as exc:
            raise TransportClosed(f"redis: {redact(str(exc) or type(exc).__name__)}") from None
        frames = []
        with self._lock:
            for entry_id, fields in entries:
                if not fields:  # deleted (trimmed) while pending: nothing to hand on
                    cursor.consumed(entry_id)
                    continue
                payload = fields.get("event", "")
                frames.append((OP_TEXT, payload.encode("utf-8", "surrogateescape")))
                self._queued.append((entry_id, _entry_key(fields, payload)))
            gone = len(self._queued) - self._capacity
            if gone > 0:  # out of the client's queue for sure
                cursor.consumed(*(self._queued.popleft()[0] for _ in range(gone)))
        # Any answer, "nothing new" too, proves the server alive: count it as received.
        return max(1, sum(len(payload) for _, payload in frames)), frames

    def send_text(self, text: str) -> bool:
        return False

    def send_ping(self, payload: bytes = b"") -> bool:
        return False

    def send_pong(self, payload: bytes) -> None:
        return None

    def close(self, code: int) -> None:
        # The client is closing: its consumer is done with the event in hand.
        with self._lock:
            entry, self._in_hand = self._in_hand, None
        if entry is not None:
            self.cursor.consumed(entry)

    def abort(self) -> None:
        self._aborted.set()  # a read waits at most half a second

    def shutdown(self) -> None:
        try:
            self.cursor.commit()
        except Exception:
            pass

    @classmethod
    def metrics_collector(cls, transports: Sequence[object]) -> RedisConsumerCollector:
        """A client's metrics registry picks this up (``pumpsync.metrics.extra_collectors``)."""
        return RedisConsumerCollector(t for t in transports if isinstance(t, RedisTransport))

    # -- reports from the client
    def taken(self, event: Event | None) -> None:
        """From ``Client.get()``: None when the consumer asks for the next event (the one in hand is
        consumed), then the event it got (skipped entries before it, dropped by the client as
        duplicates, are consumed too; it is the one in hand). Commits before returning."""
        with self._lock:
            self._reported = True
            done = [self._in_hand] if self._in_hand is not None else []
            self._in_hand = None
            if event is not None:
                key = _key(event.kind, event.signature, event.mint)
                while self._queued:
                    entry, queued_key = self._queued.popleft()
                    if queued_key == key:
                        self._in_hand = entry
                        break
                    done.append(entry)
        if done:
            self.cursor.consumed(*done)
            self.cursor.commit()


def _key(kind: str | None, signature: str | None, mint: str | None) -> tuple[str | None, ...]:
    return (kind, signature, mint)


def _entry_key(fields: Mapping[str, str], payload: str) -> tuple[str | None, ...]:
    """The key :meth:`RedisTransport.taken` finds an entry's event by: from the sink's filter
    fields (it leaves out the null ones), else (an entry written by something else) from the JSON."""
    if "provider" in fields:
        return _key(fields.get("kind"), fields.get("signature"), fields.get("mint"))
    if len(payload) > MAX_ENTRY:
        return _key(None, None, None)
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return _key(None, None, None)
    if not isinstance(data, dict):
        return _key(None, None, None)
    return _key(*(opt_str(data.get(name)) for name in ("kind", "signature", "mint")))


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
    transport=RedisTransport,
)


class RedisConsumerCollector:
    """Prometheus metrics of redis consumers (:class:`RedisReader` or a client's
    :class:`RedisTransport`): lag behind the stream's end, the group's pending entries, claims."""

    def __init__(self, sources: Iterable[RedisReader | RedisTransport]) -> None:
        self.sources = list(sources)

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


__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "SPEC",
    "RedisConsumerCollector",
    "RedisDialect",
    "RedisReader",
    "RedisTransport",
    "event_from_entry",
    "parse_url",
    "redis_client",
    "require_redis",
]
