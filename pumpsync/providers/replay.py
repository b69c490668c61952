"""Replay: recorded events (the JSONL and SQLite sinks' files) as a source like any provider.

``pumpsync.connect("replay", url="file:events.jsonl", speed=10)`` delivers the recorded
:class:`~pumpsync.Event` objects in recorded order, paced as they were received (``speed``
times faster; ``speed=0``: as fast as the consumer takes them), so that a bot's code runs
unchanged on live or recorded data.

URLs: ``file:PATH`` (JSON Lines: one ``Event.to_dict()`` per line, as ``pumpsync stream
--format jsonl``, the daemon's ``jsonl:`` sink and ``pumpsync demo --record`` write them) and
``sqlite:PATH`` (the daemon's ``sqlite:`` sink); ``file:`` with a ``.db``/``.sqlite``/``.sqlite3``
name is read as SQLite too. ``since``: a slot, or an epoch time in milliseconds (any value
of at least 10^12): events before it are skipped.

``Recording`` reads, ``Pacer`` paces; ``ReplayFeed`` hands their events to a client's connection
as an event feed (``SPEC.feed``). The events are the recorded ones but for ``connection``, which
is the replaying client's (0).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pumpsync._bounds import event_from_record
from pumpsync._secrets import ApiKey
from pumpsync.errors import ConfigurationError, EndOfStream, ProviderRefused
from pumpsync.events import Event
from pumpsync.options import ProviderOptions, option
from pumpsync.providers.base import ClosePolicy, Dialect, Fatal, Handshake, Malformed, Output, Subscription
from pumpsync.providers.spec import ConnectFailed, ProviderSpec, TransportClosed

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

log = logging.getLogger("pumpsync.replay")

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MAX_LINE = 8 * 1024 * 1024  # bytes of one recorded event at most (a frame is 1 MiB; its raw copy rides along)
_CHUNK = 64 * 1024
EPOCH_MS_FROM = 10**12  # a ``since`` this large is a time (epoch ms), not a slot
URL_SCHEMES = ("file", "sqlite")


@dataclass(frozen=True)
class Source:
    """Where a recording is: its format and path."""

    form: str  # "jsonl" or "sqlite"
    path: Path

    @classmethod
    def parse(cls, url: str) -> Source:
        """``file:PATH``, ``file://PATH``, ``sqlite:PATH``; raises ``ConfigurationError("url", ...)``."""
        scheme, sep, rest = url.partition(":")
        if not sep or scheme not in URL_SCHEMES or not rest:
            raise ConfigurationError("url", f"{url!r} is not a recording (file:PATH or sqlite:PATH)")
        if rest.startswith("//"):
            rest = rest[2:]
            if not rest.startswith("/"):  # file://host/path: only the local host
                host, _, tail = rest.partition("/")
                if host not in ("", "localhost"):
                    raise ConfigurationError("url", f"{url!r}: only local files can be replayed")
                rest = "/" + tail
        path = Path(rest).expanduser()
        form = "sqlite" if scheme == "sqlite" or path.suffix.lower() in SQLITE_SUFFIXES else "jsonl"
        if not path.is_file():
            raise ConfigurationError("url", f"{str(path)!r} is not a readable file")
        return cls(form, path)


def _wanted(since: int | None) -> Callable[[Event], bool]:
    if since is None:
        return lambda event: True
    if since >= EPOCH_MS_FROM:
        return lambda event: event.received_at >= since
    return lambda event: event.slot is not None and event.slot >= since


class Recording:
    """The events of one file, in recorded order, read lazily (a recording may be large)."""

    def __init__(self, source: Source, since: int | None = None) -> None:
        self.source = source
        self.since = since
        self.skipped = 0  # lines or rows that are not events (counted, logged once)

    def __iter__(self) -> Iterator[Event]:
        wanted = _wanted(self.since)
        rows = self._sqlite() if self.source.form == "sqlite" else self._jsonl()
        for where, data in rows:
            try:
                event = event_from_record(data)  # typed and bounded: an ISO received_at is refused
            except (TypeError, ValueError) as exc:
                self._skip(where, str(exc))
                continue
            if wanted(event):
                yield event

    def check(self) -> None:
        """``ConfigurationError("url", ...)`` now, in one line, if the file cannot be a recording
        (an SQLite file without the sink's table, a file that is not SQLite at all)."""
        if self.source.form == "sqlite":
            db = self._open()
            try:
                db.execute("SELECT id, data, channel FROM events LIMIT 0")
            except sqlite3.Error as exc:
                raise ConfigurationError("url", f"{self.source.path} is not a pumpsync recording: {exc}") from None
            finally:
                db.close()

    def _open(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(f"{self.source.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise ConfigurationError("url", f"cannot open {self.source.path}: {exc}") from None

    def _skip(self, where: str, why: str) -> None:
        self.skipped += 1
        if self.skipped == 1:
            log.warning("replay: %s %s is not an event (%s); skipping such records", self.source.path, where, why)

    def _jsonl(self) -> Iterator[tuple[str, dict[str, Any]]]:
        with self.source.path.open("rb") as lines:
            number = 0
            while True:
                raw = lines.readline(MAX_LINE + 1)  # never more than MAX_LINE in memory
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE:
                    raw = b"x"  # let go of it before reading the rest of the line, a chunk at a time
                    while raw and not raw.endswith(b"\n"):
                        raw = lines.readline(_CHUNK)
                    self._skip(f"line {number}", f"longer than {MAX_LINE} bytes")
                    continue
                line = raw.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    self._skip(f"line {number}", f"not JSON: {exc}")
                    continue
                if not isinstance(data, dict):
                    self._skip(f"line {number}", "not a JSON object")
                    continue
                yield f"line {number}", data

    def _sqlite(self) -> Iterator[tuple[str, dict[str, Any]]]:
        db = self._open()
        try:
            try:
                # The sink's table: ``data`` is Event.to_dict(); ``channel`` is kept even where ``data`` lacks it.
                # A row longer than MAX_LINE is never loaded: SQLite measures it and hands on NULL.
                rows = db.execute(
                    "SELECT id, CASE WHEN length(data) > ? THEN NULL ELSE data END, channel, length(data) > ?"
                    " FROM events ORDER BY id",
                    (MAX_LINE, MAX_LINE),
                )
            except sqlite3.Error as exc:
                raise ConfigurationError("url", f"{self.source.path} is not a pumpsync recording: {exc}") from None
            yield from self._rows(rows)
        except sqlite3.Error as exc:  # a page that cannot be read, halfway through
            raise ConfigurationError("url", f"{self.source.path} cannot be read further: {exc}") from None
        finally:
            db.close()

    def _rows(self, rows: Iterable[tuple[Any, Any, Any, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for row_id, text, channel, too_long in rows:
            if too_long:
                self._skip(f"row {row_id}", f"longer than {MAX_LINE} characters")
                continue
            try:
                data = json.loads(text)
            except (TypeError, ValueError, RecursionError) as exc:
                self._skip(f"row {row_id}", f"not JSON: {exc}")
                continue
            if isinstance(data, dict):
                data.setdefault("channel", channel)
                yield f"row {row_id}", data
            else:
                self._skip(f"row {row_id}", "not a JSON object")


class Pacer:
    """When to deliver each event: at the recorded pace divided by ``speed`` (0: at once).

    The first event sets the origin; each later one is due ``(received_at - first) / speed``
    seconds after the replay's start. A consumer that falls behind is not made to wait more.
    """

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ConfigurationError("speed", "must be >= 0 (0: as fast as possible)")
        self.speed = speed
        self.clock = clock
        self._origin: tuple[float, int] | None = None

    def due(self, event: Event) -> float:
        """The clock reading at which ``event`` is due."""
        if self._origin is None:
            self._origin = (self.clock(), event.received_at)
        if self.speed == 0:
            return self._origin[0]
        start, first = self._origin
        return start + max(0, event.received_at - first) / 1000.0 / self.speed


def replay(
    url: str, speed: float = 1.0, since: int | None = None, stop: threading.Event | None = None
) -> Iterator[Event]:
    """The recorded events of ``url``, paced; ends at the end of the file or once ``stop`` is set."""
    stop = stop or threading.Event()
    pacer = Pacer(speed)
    for event in Recording(Source.parse(url), since):
        wait = pacer.due(event) - pacer.clock()
        if (wait > 0 and stop.wait(wait)) or stop.is_set():
            return
        yield event


# ---------------------------------------------------------------- the provider: an event feed

_BATCH = 1000  # events per read at most
_MAX_WAIT = 0.5  # a read returns within this (the feed contract: close() stays prompt)


class _Depth(Protocol):
    def qsize(self) -> int: ...


class ReplayFeed:
    """A recording as a connection's event feed: each event when it is due, never more than half
    the client's queue ahead of the consumer; the end of the recording ends the stream
    (``EndOfStream``), and a file that is not a recording (any more) ends it with ``ProviderRefused``."""

    acknowledges: ClassVar[bool] = False  # a recording has no position to commit

    def __init__(self, config: ClientConfig, index: int) -> None:
        self.config = config
        self.index = index
        self._wake = threading.Event()  # abort
        self._stopped = False
        self._queue: _Depth | None = None
        self._high_water = max(1, config.queue_size // 2)
        self._events: Iterator[Event] | None = None
        self._pacer = Pacer(1.0)
        self._next: Event | None = None
        self._ended = False
        self._error: str | None = None  # the recording cannot be read: the next read says so, once

    def bind_queue(self, queue: _Depth) -> None:
        self._queue = queue

    def open(self, subscriptions: list[Subscription]) -> None:
        """Start at the recording's beginning (a new session replays it again)."""
        self._stopped = False
        self._wake.clear()
        try:
            recording = Recording(Source.parse(self.config.url_of(self.index)), self.config.since)
        except ConfigurationError as exc:  # the file is gone: maybe for a moment, retried
            raise ConnectFailed(str(exc).split(": ", 1)[-1]) from None
        try:
            recording.check()
            self._events, self._error = iter(recording), None
        except ConfigurationError as exc:  # not a recording: retrying cannot help, the first read ends the stream
            self._events, self._error = iter(()), str(exc)
        speed = self.config.speed
        self._pacer = Pacer(1.0 if speed is None else speed)
        self._next, self._ended = None, False

    def read(self) -> list[Output]:
        deadline = time.monotonic() + _MAX_WAIT
        out: list[Output] = []
        # The events of one read reach the queue together: no more than it has room for below half.
        room = _BATCH if self._queue is None else min(_BATCH, self._high_water - self._queue.qsize())
        while len(out) < max(room, 1):
            if self._stopped:
                raise TransportClosed("replay stopped")
            if self._ended:
                if not out:
                    self._pause(deadline - time.monotonic())  # the client is closing
                break
            if room <= 0:  # let the consumer catch up
                if not out:
                    self._pause(0.01)  # polled: the queue has no "drained" signal to wait on
                break
            try:
                event = self._next if self._next is not None else next(self._events or iter(()), None)
            except ConfigurationError as exc:  # unreadable halfway through
                self._error, event = str(exc), None
            self._next = None
            if self._error is not None or event is None:
                self._ended = True
                out.append(Fatal(self._end()))
                break
            wait = self._pacer.due(event) - self._pacer.clock()
            if wait > 0:
                self._next = event
                if out or time.monotonic() + wait > deadline:
                    if not out:
                        self._pause(deadline - time.monotonic())
                    break
                self._pause(wait)
                continue
            out.append(event._replace(connection=self.index))  # counted against this client's connection
        return out

    def _end(self) -> EndOfStream | ProviderRefused:
        if self._error is not None:
            return ProviderRefused(self._error, provider="replay", error_code="not_a_recording")
        return EndOfStream("the recording has ended")

    def _pause(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def consumed(self, event: Event) -> None:
        return None

    def abort(self) -> None:
        self._stopped = True
        self._wake.set()

    def shutdown(self) -> None:
        self._events = None


class Replay(Dialect):
    """A recorded event as an event: one ``Event.to_dict()`` in (the provider's events come from
    :class:`ReplayFeed`, already decoded; this is its spec's dialect, and a decoder for tests)."""

    provider = "replay"
    default_url = "file:events.jsonl"
    close_policies: ClassVar[dict[int, ClosePolicy]] = {}

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        return Handshake(url, {})

    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if isinstance(obj, Malformed):
            return [obj]
        try:
            event = event_from_record(obj)
        except (TypeError, ValueError):
            return self.unknown(obj, received_at, "invalid_fields")
        return [event._replace(connection=self.connection)]


def _check(config: ClientConfig) -> None:
    """Fail at once, naming the option, rather than at the first connection attempt."""
    if config.speed is not None and (
        isinstance(config.speed, bool) or not isinstance(config.speed, (int, float)) or not config.speed >= 0
    ):
        raise ConfigurationError("speed", "must be a number >= 0 (0: as fast as the consumer takes the events)")
    Recording(Source.parse(config.url)).check()


@dataclass(frozen=True)
class ReplayOptions(ProviderOptions):
    """Replay's own options (``options=pumpsync.ReplayOptions(...)``)."""

    speed: float = option(1.0, "The recorded pace times this (0: as fast as the consumer takes the events).")


SPEC = ProviderSpec(
    name="replay",
    summary="replay: recorded events (the JSONL / SQLite sinks' files) at the recorded pace, for backtesting",
    dialect=Replay,
    default_url=Replay.default_url,
    url_schemes=URL_SCHEMES,
    auth_forms=("none",),
    default_auth="none",
    key_required=False,
    heartbeat="none",  # every read returns within half a second: the feed is alive
    max_connections=1,
    max_connections_reason="a recording is read once",
    options=ReplayOptions,
    capabilities=frozenset({"since"}),
    check=_check,
    feed=ReplayFeed,
)


__all__ = ["SPEC", "Pacer", "Recording", "Replay", "ReplayFeed", "Source", "replay"]
