"""Where events from every connection meet: de-duplication, the bounded queue, backfill ordering.

Overflow policy: the queue holds ``queue_size`` events. When it is full, the *oldest* queued
event is dropped to make room (a trading consumer wants the newest data), the drop is counted,
and — for providers with history — its slot is remembered so that gap recovery can fetch it
again once the consumer has caught up. Errors are never dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from pumpsync._stats import ClientStats
from pumpsync.errors import PumpsyncError
from pumpsync.events import Event

Item = Event | PumpsyncError


class SeenSet:
    """The identities of the last ``size`` events: bounded memory however long the client runs.

    It keeps each identity's 64-bit hash, not the identity (whose strings would stay alive):
    about 100 bytes an event instead of 600. Two different events in one window share a hash
    with a probability near size**2 / 2**64 (1e-9 for 200,000): accepted.
    """

    __slots__ = ("_order", "_seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: set[int] = set()
        self._order: deque[int] = deque()

    def add(self, identity: tuple[Any, ...]) -> bool:
        """Remember ``identity``; False if it was already there."""
        key = hash(identity)
        seen = self._seen
        if key in seen:
            return False
        seen.add(key)
        order = self._order
        order.append(key)
        if len(order) > self.size:
            seen.discard(order.popleft())
        return True

    def forget(self, identity: tuple[Any, ...]) -> None:
        self._seen.discard(hash(identity))

    def __len__(self) -> int:
        return len(self._seen)


class Delivery:
    """Thread-safe sink for all connections; the consumer reads ``queue``."""

    def __init__(self, stats: ClientStats, capacity: int, dedup_size: int) -> None:
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.capacity = capacity
        self.stats = stats
        self._seen = SeenSet(dedup_size)
        self._lock = threading.Lock()
        # While a gap is being back-filled, live events wait here so that the gap comes first.
        self._holds = 0
        self._hold_until = 0.0
        self._held: deque[Event] = deque()
        self.last_slot: dict[str, int] = {}  # channel -> highest slot delivered
        self.dropped_from: dict[str, int] = {}  # channel -> lowest slot lost to overflow, not yet recovered

    # -- producers
    def deliver(self, event: Event) -> bool:
        """Hand one live event on; False if it was a duplicate."""
        identity = event.identity
        with self._lock:
            if identity is not None and not self._seen.add(identity):
                self.stats.duplicates += 1
                return False
            if self._holds:
                if time.monotonic() < self._hold_until:
                    if len(self._held) >= self.capacity:  # the same overflow policy as the queue
                        self._dropped(self._held.popleft())
                        self.stats.held -= 1
                    self._held.append(event)
                    self.stats.held += 1
                    return True
                self._holds = 0  # a backfill that overstays does not hold the stream hostage
                self._flush_held()
            self._put(event)
            return True

    def hold(self, seconds: float) -> None:
        """Keep live events back until :meth:`release` (a backfill is starting), at most ``seconds``."""
        with self._lock:
            self._holds += 1
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    def release(self, backfilled: Iterable[Event], held: bool = True) -> int:
        """Deliver back-filled events in slot order, then (when the last hold ends) the live events
        held meanwhile. ``held`` says whether this backfill had called :meth:`hold`. Returns how many were new."""
        new = 0
        with self._lock:
            for event in sorted(backfilled, key=_slot_key):
                identity = event.identity
                if identity is not None and not self._seen.add(identity):
                    self.stats.duplicates += 1
                    continue
                self._put(event)
                new += 1
            self.stats.backfill_events += new
            if held and self._holds:
                self._holds -= 1
                if not self._holds:
                    self._flush_held()
        return new

    def _flush_held(self) -> None:
        while self._held:
            self.stats.held -= 1
            self._put(self._held.popleft())

    def fail(self, error: PumpsyncError) -> None:
        """Queue an error for the consumer; errors bypass the capacity bound."""
        self.queue.put(error)

    # -- internals
    def _put(self, event: Event) -> None:
        q = self.queue
        if q.qsize() >= self.capacity:
            self._drop_oldest()
        q.put(event)
        stats = self.stats
        stats.events[event.kind] += 1
        stats.connections[event.connection].first_deliveries += 1
        slot = event.slot
        channel = event.channel
        if slot is not None and channel is not None and slot > self.last_slot.get(channel, -1):
            self.last_slot[channel] = slot
        if event.timestamp is not None and not event.backfill:
            stats.delay.observe(max(0.0, (event.received_at - event.timestamp) / 1000.0))

    def _drop_oldest(self) -> None:
        try:
            oldest = self.queue.get_nowait()
        except queue.Empty:  # the consumer just took it
            return
        if not isinstance(oldest, Event):
            self.queue.put(oldest)  # errors are never dropped (it moves to the back; rare)
            return
        self._dropped(oldest)

    def _dropped(self, event: Event) -> None:
        self.stats.dropped += 1
        identity = event.identity
        if identity is not None:
            self._seen.forget(identity)  # so that a backfill may bring it back
        if event.slot is not None and event.channel is not None:
            low = self.dropped_from.get(event.channel)
            if low is None or event.slot < low:
                self.dropped_from[event.channel] = event.slot

    def take_overflow_gaps(self) -> dict[str, int]:
        """The channels and slots lost to overflow since the last call (for gap recovery)."""
        with self._lock:
            gaps, self.dropped_from = self.dropped_from, {}
        return gaps


def _slot_key(event: Event) -> int:
    return event.slot if event.slot is not None else -1
