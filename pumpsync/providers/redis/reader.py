"""A redis source on a thread of its own: :class:`RedisReader`, the API of :class:`pumpsync.Client`
(``get()``, iteration, ``close()``, a context manager, ``stats()``) without its machinery. The
options, and when an event counts as consumed, are those of the client's redis source
(``pumpsync/providers/redis/source.py``)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pumpsync._backoff import Backoff
from pumpsync._secrets import redact, safe_url
from pumpsync._threads import join_thread
from pumpsync.errors import AuthenticationError as RefusedKey
from pumpsync.errors import ClientClosed, ConfigurationError, ConnectionLost, PumpsyncError
from pumpsync.events import Event
from pumpsync.providers.redis._common import DEFAULT_URL
from pumpsync.providers.redis._cursor import Entry, ReaderOptions, StreamCursor
from pumpsync.providers.redis.source import RedisDialect

log = logging.getLogger("pumpsync.redis")


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


__all__ = ["RedisReader"]
