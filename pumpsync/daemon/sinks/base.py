"""What every sink shares: a bounded buffer, its own writer thread, retries and counters.

The dispatcher only ever calls :meth:`Sink.offer`, which never blocks: when the buffer is full
the event is refused and counted, so a slow or failing sink cannot stall the connections or
the other sinks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from pumpsync._secrets import redact
from pumpsync._threads import join_thread
from pumpsync.events import Event

log = logging.getLogger("pumpsync.sinks")

_LOG_EVERY = 30.0  # seconds between repeated failure warnings of one sink


class PermanentFailure(Exception):
    """A write that retrying cannot fix (an HTTP 400, say): the batch is dropped at once."""


def event_json(event: Event) -> str:
    """One event as compact JSON (the JSONL line, the webhook item, the SQLite ``data`` column)."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)


class Sink(ABC):
    """A destination for events, fed through :meth:`offer`, written on its own thread.

    Subclasses implement :meth:`write` (raise to fail the batch) and may override
    :meth:`open`, :meth:`reopen` and :meth:`close_resources`.
    """

    kind: ClassVar[str]
    # Write attempts per batch: more than one only where a retry cannot duplicate output.
    attempts: int = 1

    def __init__(
        self,
        name: str,
        *,
        buffer: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._name = name
        self._capacity = buffer
        self.batch_size = batch_size
        self.linger = linger
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._buf: deque[Event] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline: float | None = None  # monotonic; set by close()
        self._reopen = False
        self._written = 0
        self._failures = 0
        self._dropped = 0
        self._healthy = True
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._run, name=f"pumpsync-sink-{name}", daemon=True)

    # ------------------------------------------------------------------ counters (pumpsync.metrics.SinkStats)
    @property
    def name(self) -> str:
        return self._name

    @property
    def written(self) -> int:
        return self._written

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def depth(self) -> int:
        return len(self._buf)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def healthy(self) -> bool:
        return self._healthy

    # ------------------------------------------------------------------ hooks
    def open(self) -> None:
        """Acquire resources; runs on the caller's thread so that a bad setting fails at start-up."""
        return None

    @abstractmethod
    def write(self, batch: list[Event]) -> None:
        """Write a batch; raise to fail it (:class:`PermanentFailure` for no retry)."""

    def reopen(self) -> None:
        """Runs on the sink's thread after SIGHUP (log rotation)."""
        return None

    def close_resources(self) -> None:
        """Flush and release; runs on the sink's thread once the buffer is drained."""
        return None

    def describe(self) -> str:
        """For log lines: what the sink writes to, without secrets."""
        return self.kind

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self.open()
        self._thread.start()

    def offer(self, event: Event) -> bool:
        """Take ``event`` if there is room; never blocks. False (and counted) when it cannot."""
        with self._cond:
            if self._closing or len(self._buf) >= self._capacity:
                self._dropped += 1
                return False
            self._buf.append(event)
            self._cond.notify()
        return True

    def request_reopen(self) -> None:
        with self._cond:
            self._reopen = True
            self._cond.notify()

    def close(self, deadline: float) -> None:
        """Stop taking events; write what is buffered until ``deadline`` (monotonic), then release."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        return join_thread(self._thread, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            while True:
                batch, reopen = self._take()
                if reopen:
                    self._guarded(self.reopen, "reopen")
                if batch is None:
                    break
                if batch:
                    self._deliver(batch)
        finally:
            with self._cond:
                self._dropped += len(self._buf)  # left over at the shutdown deadline
                self._buf.clear()
            self._guarded(self.close_resources, "close")

    def _take(self) -> tuple[list[Event] | None, bool]:
        """The next batch ([] when only a reopen is due); None once closed and drained."""
        with self._cond:
            while not self._buf and not self._closing and not self._reopen:
                self._cond.wait()
            reopen, self._reopen = self._reopen, False
            if self._closing and (not self._buf or self._past_deadline()):
                return None, reopen
            if self.linger > 0 and not self._closing:
                until = time.monotonic() + self.linger
                while len(self._buf) < self.batch_size and not self._closing and not self._reopen:
                    remaining = until - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            n = min(self.batch_size, len(self._buf))
            return [self._buf.popleft() for _ in range(n)], reopen

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, batch: list[Event]) -> None:
        delay = self.retry_initial
        for attempt in range(1, self.attempts + 1):
            try:
                self.write(batch)
            except Exception as exc:
                self._failures += 1
                self._failed(exc, len(batch), attempt)
                if isinstance(exc, PermanentFailure) or attempt == self.attempts or not self._pause(delay):
                    break
                delay = min(delay * 2, self.retry_max)
            else:
                self._written += len(batch)
                if not self._healthy:
                    log.info("sink %s: writing again", self._name)
                self._healthy = True
                return
        with self._cond:  # offer() counts under the same lock
            self._dropped += len(batch)

    def _pause(self, delay: float) -> bool:
        """Wait before a retry; False when shutting down leaves no time for it."""
        with self._cond:
            until = time.monotonic() + delay
            while True:
                if self._closing and (self._deadline is None or time.monotonic() + 0.01 >= self._deadline):
                    return False
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return True
                if self._closing and self._deadline is not None:
                    remaining = min(remaining, self._deadline - time.monotonic())
                self._cond.wait(remaining)

    def _failed(self, exc: BaseException, size: int, attempt: int) -> None:
        was_healthy, self._healthy = self._healthy, False
        now = time.monotonic()
        if was_healthy or now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning(
                "sink %s (%s): writing %d events failed (attempt %d of %d): %s",
                self._name, self.describe(), size, attempt, self.attempts, _describe(exc),
            )  # fmt: skip

    def _guarded(self, action: Callable[[], None], what: str) -> None:
        try:
            action()
        except Exception as exc:
            self._failures += 1
            self._healthy = False
            log.warning("sink %s: %s failed: %s", self._name, what, _describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
