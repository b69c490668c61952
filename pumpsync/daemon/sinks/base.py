"""What every sink shares: a bounded buffer, its own writer thread, retries and counters.

The dispatcher only ever calls :meth:`Sink.offer`, which never blocks: when the buffer is full
the event is refused and counted, so a slow or failing sink cannot stall the connections or
the other sinks.

Every event offered ends up counted exactly once, as written or as dropped, also when a write
is stuck at shutdown (:meth:`Sink.abandon`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

from pumpsync._json import strict_json
from pumpsync._secrets import redact
from pumpsync._threads import join_thread
from pumpsync.events import Event

log = logging.getLogger("pumpsync.sinks")

T = TypeVar("T")

_LOG_EVERY = 30.0  # seconds between repeated failure warnings of one sink
_AT_SLOT_MAX = 10_000  # identities kept of the events written at one channel's newest slot


class PermanentFailure(Exception):
    """A write that retrying cannot fix (an HTTP 400, say): the batch is dropped at once."""


class PartialWrite(Exception):
    """A write that failed after the first ``written`` events of the batch were out (a deadline hit)."""

    def __init__(self, message: str, written: int) -> None:
        super().__init__(message)
        self.written = written


def identity_key(event: Event) -> str:
    """A stable, fixed-size key of the event's identity (SQLite's UNIQUE column, the webhook's ``id``)."""
    identity = event.identity
    basis: list[Any] = [event.provider, *identity] if identity is not None else [event.provider, "raw", event.raw]
    text = json.dumps(basis, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_json(event: Event, *, with_id: bool = False) -> str:
    """One event as strict compact JSON (the JSONL line, the webhook item, the SQLite ``data`` column);
    ``with_id`` puts :func:`identity_key` first as ``"id"``, for receivers that de-duplicate."""
    data = event.to_dict()
    return strict_json({"id": identity_key(event), **data} if with_id else data)


class Sink(ABC):
    """A destination for events, fed through :meth:`offer`, written on its own thread.

    Subclasses implement :meth:`write` (raise to fail the batch) and may override
    :meth:`open`, :meth:`reopen` and :meth:`close_resources`. A sink with metrics of its own adds
    a class method ``metrics_collector(sinks)`` (see ``pumpsync.metrics.extra_collectors``).
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
        write_timeout: float = 30.0,
    ) -> None:
        self._name = name
        self._capacity = buffer
        self.batch_size = batch_size
        self.linger = linger
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        # A write running longer than this is stuck: the sink reports unhealthy (sinks that can, abort it).
        self.write_timeout = write_timeout
        self._writing_since: float | None = None  # monotonic start of the write in progress
        self._in_flight = 0  # events of the write in progress
        self._abandoned = False  # abandon() has counted what was left; a late write counts nothing
        self.positions = Positions()  # what it has written: where a restarted daemon resumes
        self.skipped = 0  # back-filled events skipped as written before the restart
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
        self._on_death: Callable[[BaseException | None], None] | None = None
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
        return self._healthy and not self.stuck

    @property
    def stuck(self) -> bool:
        """A write has been running for longer than ``write_timeout``."""
        started = self._writing_since
        return started is not None and time.monotonic() - started > self.write_timeout

    # ------------------------------------------------------------------ hooks
    def open(self) -> None:
        """Acquire resources; runs on the caller's thread so that a bad setting fails at start-up."""
        return None

    @abstractmethod
    def write(self, batch: list[Event]) -> int | None:
        """Write a batch; raise to fail it (:class:`PermanentFailure` for no retry, :class:`PartialWrite`
        when some went out). Returns how many were written when not all (:meth:`encode_each` skipped some)."""

    def encode_each(self, batch: Iterable[Event], encode: Callable[[Event], T]) -> Iterator[T]:
        """``encode(event)`` of each event; one that cannot be encoded is dropped and counted, not its neighbours."""
        for event in batch:
            try:
                text = encode(event)
            except Exception as exc:  # e.g. a raw nested too deep: that event only
                self._failures += 1  # counted as dropped with the batch's outcome (written + dropped = batch)
                log.warning("sink %s: an event could not be serialized, dropped: %s", self._name, _describe(exc))
                continue
            yield text

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
    def start(self, on_death: Callable[[BaseException | None], None] | None = None) -> None:
        """Open, and start the writer thread; ``on_death`` is told what ended it unexpectedly."""
        self.open()
        self._on_death = on_death
        self._thread.start()

    def offer(self, event: Event) -> bool:
        """Take ``event`` if there is room; never blocks. False (and counted) when it cannot."""
        if event.backfill and self.positions.written_before(event):
            self.skipped += 1
            return True
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

    def abandon(self) -> int:
        """After a join that timed out (a write is stuck): count what is left as dropped, now.
        The number of events so counted; a stuck write that returns later changes no counter."""
        with self._cond:
            if self._abandoned:
                return 0
            self._abandoned = True
            left = len(self._buf) + self._in_flight
            self._dropped += left
            self._buf.clear()
            return left

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            self._write_until_closed()
        except BaseException as exc:  # a bug (not an Exception: a write's failures are caught in _deliver)
            if self._on_death is None:
                raise
            self._on_death(exc)

    def _write_until_closed(self) -> None:
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
                self._closing = True  # also after a bug: what is offered from now on is counted as dropped
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
            self._in_flight = n  # under the lock that took them: abandon() counts them or _count() does
            return [self._buf.popleft() for _ in range(n)], reopen

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, batch: list[Event]) -> None:
        delay = self.retry_initial
        try:
            for attempt in range(1, self.attempts + 1):
                self._writing_since = time.monotonic()
                try:
                    written = self.write(batch)
                except Exception as exc:
                    self._writing_since = None
                    self._failures += 1
                    self._failed(exc, len(batch), attempt)
                    if isinstance(exc, PartialWrite):
                        self._count(exc.written, len(batch) - exc.written, batch[: exc.written])
                        return
                    if isinstance(exc, PermanentFailure) or attempt == self.attempts or not self._pause(delay):
                        break
                    delay = min(delay * 2, self.retry_max)
                else:
                    self._writing_since = None
                    written = len(batch) if written is None else written
                    self._count(written, len(batch) - written, batch)
                    if not self._healthy:
                        log.info("sink %s: writing again", self._name)
                    self._healthy = True
                    return
            self._count(0, len(batch), ())
        except BaseException:
            self._count(0, len(batch), ())  # a bug ends the thread: the batch is lost, and counted
            raise
        finally:
            self._writing_since = None
            with self._cond:
                self._in_flight = 0

    def _count(self, written: int, dropped: int, out: Iterable[Event]) -> None:
        """Count one batch's outcome, unless :meth:`abandon` already counted it."""
        with self._cond:  # offer() and abandon() count under the same lock
            if self._abandoned:
                return
            self._written += written
            self._dropped += dropped
        self.positions.add(out)

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


class Positions:
    """Per channel, the newest slot a sink has written and the identities of that slot's events.

    A restarted daemon resumes the stream at the lowest such slot, and each sink then skips the
    back-filled events it wrote before: those of older slots, and those of the newest slot whose
    identity it kept. Written on the sink's thread; read by others as replaced, never mutated, values.
    """

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self._at_slot: dict[str, list[Event]] = {}  # this run's events of the newest slot
        self._restored: dict[str, tuple[int, frozenset[str]]] = {}  # from before the restart

    def add(self, events: Iterable[Event]) -> None:
        slots, at_slot = dict(self.slots), dict(self._at_slot)
        for event in events:
            channel, slot = event.channel, event.slot
            if channel is None or slot is None or slot < slots.get(channel, -1):
                continue
            if slot > slots.get(channel, -1):
                slots[channel], at_slot[channel] = slot, []
            events_at = at_slot.setdefault(channel, [])
            if len(events_at) < _AT_SLOT_MAX:
                events_at.append(event)  # readers copy the list (atomic): appending is safe
        self._at_slot, self.slots = at_slot, slots

    def state(self) -> dict[str, dict[str, Any]]:
        """JSON-ready: ``{channel: {"slot": n, "ids": [identity keys of the slot's events]}}``."""
        out: dict[str, dict[str, Any]] = {}
        slots, at_slot = self.slots, self._at_slot
        for channel, slot in slots.items():
            ids = {identity_key(event) for event in list(at_slot.get(channel, ()))}
            restored = self._restored.get(channel)
            if restored is not None and restored[0] == slot:
                ids |= restored[1]
            out[channel] = {"slot": slot, "ids": sorted(ids)}
        return out

    def restore(self, state: dict[str, dict[str, Any]]) -> None:
        """Positions written before a restart (as :meth:`state` gave them)."""
        self._restored = {ch: (int(v["slot"]), frozenset(v.get("ids", ()))) for ch, v in state.items()}
        self.slots = {ch: slot for ch, (slot, _) in self._restored.items()}

    def written_before(self, event: Event) -> bool:
        """Whether the sink wrote ``event`` before the restart (as far as its positions tell)."""
        restored = self._restored.get(event.channel or "")
        if restored is None or event.slot is None or event.slot > restored[0]:
            return False
        return event.slot < restored[0] or identity_key(event) in restored[1]


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a user's exception whose __str__ itself fails
        text = "(its message could not be shown)"
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
