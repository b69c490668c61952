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
from array import array
from collections import deque
from collections.abc import Iterable
from typing import Any

from pumpsync._handoff import HandOffQueue
from pumpsync._race import RaceTracker
from pumpsync._stats import ClientStats
from pumpsync.errors import PumpsyncError
from pumpsync.events import Event

Item = Event | PumpsyncError

# A long hand-over (a backfill, the live events held during one) wakes the consumer this often,
# so that it drains the queue while the rest is queued instead of sleeping through it and
# finding only the last ``capacity`` events (the rest dropped as overflow, to be fetched again).
_WAKE_EVERY = 1024


class SeenSet:
    """The identities of at least the last ``size`` events, in memory allocated once, up front.

    It keeps each identity's 64-bit hash, not the identity (whose strings would stay alive), in
    two open-addressing tables of machine integers (``array('q')``, linear probing, at most half
    full): the current generation takes new hashes, the previous one is still consulted. When
    the current one has taken ``size`` hashes, the previous one is zeroed and becomes the next
    current one. So the window holds between ``size`` and ``2 * size`` hashes at 8 bytes a slot
    (8 MiB for 200,000), and memory never grows after construction: no per-hash objects, no
    rehashing, nothing for the allocator to fragment. Two different events in one window share
    a hash with a probability near (2 * size)**2 / 2**64 (1e-8 for 200,000): accepted.
    """

    __slots__ = ("_count", "_current", "_mask", "_previous", "_previous_count", "_zeros", "size")

    # Slot values: 0 is empty; -1 (never a hash() value) is a forgotten hash, which lookups step over.
    _FORGOTTEN = -1

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        slots = 1 << (2 * size - 1).bit_length()  # a power of two >= 2 * size: at most half full
        self._mask = slots - 1
        self._zeros = bytes(8 * slots)  # calloc'd and only ever read: it costs no resident memory
        self._current = array("q", self._zeros)
        self._previous = array("q", self._zeros)
        self._count = 0  # hashes taken by the current generation
        self._previous_count = 0

    def add(self, identity: tuple[Any, ...]) -> bool:
        """Remember ``identity``; False if it was already there."""
        key = hash(identity) or 1  # 0 marks an empty slot
        mask = self._mask
        current = self._current
        previous = self._previous
        i = key & mask
        slot = current[i]
        if slot or previous[i]:  # else the common case: both home slots empty, a new identity
            while slot:
                if slot == key:
                    return False
                i = (i + 1) & mask
                slot = current[i]
            j = key & mask
            other = previous[j]
            while other:
                if other == key:
                    return False
                j = (j + 1) & mask
                other = previous[j]
        current[i] = key
        self._count += 1
        if self._count >= self.size:
            self._count, self._previous_count = 0, self.size
            memoryview(previous).cast("B")[:] = self._zeros
            self._current, self._previous = previous, current
        return True

    def forget(self, identity: tuple[Any, ...]) -> None:
        """Let ``identity`` be added again (its event was dropped and may be back-filled)."""
        key = hash(identity) or 1
        mask = self._mask
        for table in (self._current, self._previous):
            i = key & mask
            slot = table[i]
            while slot:
                if slot == key:
                    table[i] = self._FORGOTTEN  # not 0: that would cut the probe chains through this slot
                    return
                i = (i + 1) & mask
                slot = table[i]

    def __len__(self) -> int:
        """Slots in use (forgotten ones included): between ``size`` and ``2 * size`` once filled."""
        return self._count + self._previous_count


class Merge:
    """What the deliveries of several sources share: one queue, one de-duplication window, one
    lock, and the race between them (``None`` with one source)."""

    def __init__(self, capacity: int, dedup_size: int, race: RaceTracker | None = None) -> None:
        self.queue: HandOffQueue[Item] = HandOffQueue()
        self.capacity = capacity
        self.seen = SeenSet(dedup_size)
        self.lock = threading.Lock()
        self.race = race
        self.members: list[Delivery] = []

    def owner(self, event: Event) -> Delivery:
        """The delivery (source) that accounts for a queued event it drops: its provider's first."""
        members = self.members
        if len(members) > 1:
            for member in members:
                if member.provider == event.provider:
                    return member
        return members[0]


class Delivery:
    """Thread-safe sink for all connections of one source; the consumer reads ``queue``.

    With several sources each has its own Delivery (its counters, its backfill holds) over one
    shared :class:`Merge`: each event is delivered once, whichever source's copy came first."""

    def __init__(
        self,
        stats: ClientStats,
        capacity: int,
        dedup_size: int,
        merge: Merge | None = None,
        source: int = 0,
        provider: str | None = None,
    ) -> None:
        merge = merge if merge is not None else Merge(capacity, dedup_size)
        merge.members.append(self)
        self.merge = merge
        self.source = source  # index in the race
        self.provider = provider or stats.provider
        self.queue: HandOffQueue[Item] = merge.queue
        self.capacity = merge.capacity
        self.stats = stats
        self._seen = merge.seen
        self._lock = merge.lock
        self._race = merge.race
        # While a gap is being back-filled, live events wait here so that the gap comes first.
        self._holds = 0
        self._hold_until = 0.0
        self._held: deque[Event] = deque()
        self.last_slot: dict[str, int] = {}  # channel -> highest slot delivered
        self.dropped_from: dict[str, int] = {}  # channel -> lowest slot lost to overflow, not yet recovered

    # -- producers
    def deliver(self, event: Event) -> bool:
        """Hand one live event on; False if it was a duplicate."""
        with self._lock:
            new = self._accept(event)
        self.queue.wake()
        return new

    def deliver_all(self, events: Iterable[Event]) -> None:
        """Hand on the live events of one read, in order, under one acquisition of the lock,
        and wake the consumer once."""
        with self._lock:
            accept = self._accept
            for event in events:
                accept(event)
        self.queue.wake()

    def _accept(self, event: Event) -> bool:
        identity = event.identity
        if identity is not None:
            race = self._race
            if race is not None:  # every live copy counts in the race, duplicates too
                race.observe(identity, event.kind, self.source, event.received_at)
            if not self._seen.add(identity):
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
                if not new % _WAKE_EVERY:
                    self.queue.wake()
            self.stats.backfill_events += new
            if held and self._holds:
                self._holds -= 1
                if not self._holds:
                    self._flush_held()
        self.queue.wake()
        return new

    def _flush_held(self) -> None:
        flushed = 0
        while self._held:
            self.stats.held -= 1
            self._put(self._held.popleft())
            flushed += 1
            if not flushed % _WAKE_EVERY:
                self.queue.wake()

    def fail(self, error: PumpsyncError) -> None:
        """Queue an error for the consumer; errors bypass the capacity bound."""
        self.queue.put(error)

    # -- internals
    def _put(self, event: Event) -> None:
        """Queue ``event`` without waking the consumer: the public producers wake it after a
        batch (and every ``_WAKE_EVERY`` events of a long one)."""
        q = self.queue
        if q.qsize() >= self.capacity:
            self._drop_oldest()
        stats = self.stats
        stats.events[event.kind] += 1
        stats.connections[event.connection].first_deliveries += 1
        slot = event.slot
        channel = event.channel
        if slot is not None and channel is not None and slot > self.last_slot.get(channel, -1):
            self.last_slot[channel] = slot
        if event.timestamp is not None and not event.backfill:
            stats.observe_delay((event.received_at - event.timestamp) / 1000.0)  # implausible ones: counted
        q.append(event)  # last: a consumer that holds the event and reads stats() finds it counted

    def _drop_oldest(self) -> None:
        try:
            oldest = self.queue.get_nowait()
        except queue.Empty:  # the consumer just took it
            return
        if not isinstance(oldest, Event):
            self.queue.put(oldest)  # errors are never dropped (it moves to the back; rare)
            return
        self.merge.owner(oldest)._dropped(oldest)

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
