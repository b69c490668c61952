"""Where events from every connection meet: de-duplication, the bounded queue, backfill ordering.

Overflow policy: the queue holds ``queue_size`` events. When it is full, the *oldest* queued
event is dropped to make room (a trading consumer wants the newest data), the drop is counted,
and — for providers with history — its position is remembered so that gap recovery can fetch it
again. Errors are never dropped.

While gap recovery runs, live events are *held* by the recovery's hold (``_hold.py``: it owns
them; the delivery gives them to it, and hands them on atomically with the hold's end): they are
de-duplicated only when they go out, after the history.
"""

from __future__ import annotations

import queue
import threading
import weakref
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pumpsync._handoff import HandOffQueue
from pumpsync._hold import Hold
from pumpsync._race import RaceTracker
from pumpsync._stats import DELAY_FUTURE_TOLERANCE, DELAY_PAST_LIMIT, ClientStats
from pumpsync.errors import PumpsyncError
from pumpsync.events import Event
from pumpsync.providers.spec import Position

Item = Event | PumpsyncError

# A long hand-over (the live events held during a recovery) wakes the consumer this often, so
# that it drains the queue while the rest is queued instead of sleeping through it.
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

    def __init__(
        self, capacity: int, dedup_size: int, race: RaceTracker | None = None, prefer: dict[str, int] | None = None
    ) -> None:
        self.prefer = prefer or {}  # kind -> the source whose disagreeing copy replaces a queued one
        self.replacements: OrderedDict[Any, Event] = OrderedDict()  # identity -> the preferred copy
        self.replaced = 0
        self.queue: HandOffQueue[Item] = HandOffQueue(self._substitute if self.prefer else None)
        self.capacity = capacity
        self.seen = SeenSet(dedup_size)
        self.lock = threading.Lock()
        self.race = race
        # Each source's delivery, weakly (a delivery holds its merge: no reference cycle).
        self.members: list[weakref.ref[Delivery]] = []

    def prefer_copy(self, identity: Any, event: Event) -> None:
        """The preferred source's copy disagrees with the one queued: it goes out instead, if that one
        is still queued (under the delivery lock; bounded: the oldest are forgotten)."""
        self.replacements[identity] = event
        if len(self.replacements) > self.capacity:
            self.replacements.popitem(last=False)

    def _substitute(self, item: Item) -> Item:
        """As the consumer takes ``item``: the preferred copy instead, if one came (see docs/multi-source.md)."""
        if self.replacements and isinstance(item, Event):
            preferred = self.replacements.pop(item.identity, None)
            if preferred is not None:
                self.replaced += 1
                return preferred
        return item

    def owner(self, event: Event, dropping: Delivery) -> Delivery:
        """The delivery (source) that accounts for a queued event it drops: its provider's first
        (``dropping``, the one making room, once the others have left at close)."""
        members = [m for m in (ref() for ref in self.members) if m is not None] or [dropping]
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
        label: str | None = None,
    ) -> None:
        merge = merge if merge is not None else Merge(capacity, dedup_size)
        merge.members.append(weakref.ref(self))
        self.merge = merge
        self.source = source  # index in the race
        self.provider = provider or stats.provider
        self.label = label  # several sources: this one's name, set on the events it delivers first
        self.queue: HandOffQueue[Item] = merge.queue
        self.capacity = merge.capacity
        self.stats = stats
        self._seen = merge.seen
        self._lock = merge.lock
        self._race = merge.race
        # The gap recovery's hold (attached by it; None: no recovery). While it is in force live
        # events wait there, so that the gap comes first.
        self._hold: Hold | None = None
        self.last_slot: dict[str, int] = {}  # channel -> highest slot delivered
        self._newest_slot = -1  # the newest slot delivered, and its event's signature (stream-wide history)
        self._newest_signature: str | None = None
        self.dropped_from: dict[str, Position] = {}  # channel -> lowest position lost to overflow, not yet recovered

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
            hold = self._hold
            if self._race is None and (hold is None or hold.since is None) and self.label is None:
                self._put_live(events if isinstance(events, list) else list(events))
            else:
                accept = self._accept
                for event in events:
                    accept(event)
        self.queue.wake()

    def _put_live(self, events: list[Event]) -> None:
        """``_accept`` for a batch when nothing races and nothing holds (the bulk path): the same
        de-duplication and counting as ``_put``, in one loop, without two calls per event."""
        q = self.queue
        if q.qsize() + len(events) >= self.capacity:
            for event in events:  # the queue may overflow: event by event, as _put drops
                self._accept(event)
            return
        seen_add = self._seen.add
        stats = self.stats
        delay = stats.delay
        buckets, counts = delay.buckets, delay.counts
        observed, total, duplicates = 0, 0.0, 0
        # Kinds and connections are counted by runs (a read's events are one connection's, and in
        # bulk all trades): one dictionary update per run, not per event.
        kind, connection, run = None, -1, 0
        fresh: list[Event] = []
        keep = fresh.append
        for event in events:
            identity = event.identity
            if identity is not None and not seen_add(identity):
                duplicates += 1
                continue
            if event.kind != kind or event.connection != connection:
                if run:
                    self._count_run(kind, connection, run)
                kind, connection, run = event.kind, event.connection, 0
            run += 1
            slot = event.slot
            if slot is not None:
                channel = event.channel
                if channel is not None and slot > self.last_slot.get(channel, -1):
                    self.last_slot[channel] = slot
                if slot > self._newest_slot:
                    self._newest_slot, self._newest_signature = slot, event.signature
            timestamp = event.timestamp
            if timestamp is not None and not event.backfill:
                seconds = (event.received_at - timestamp) / 1000.0
                if -DELAY_FUTURE_TOLERANCE <= seconds <= DELAY_PAST_LIMIT:  # Histogram.observe, inline
                    counts[bisect_left(buckets, seconds if seconds > 0.0 else 0.0)] += 1
                    observed += 1
                    total += seconds if seconds > 0.0 else 0.0
                else:
                    stats.observe_delay(seconds)  # implausible: counted by reason
            keep(event)
        if run:
            self._count_run(kind, connection, run)
        if observed:
            delay.count += observed
            delay.sum += total
        if duplicates:
            stats.duplicates += duplicates
        q.extend(fresh)  # last: a consumer that holds an event and reads stats() finds it counted

    def _count_run(self, kind: str | None, connection: int, run: int) -> None:
        self.stats.events[kind or ""] += run
        self.stats.connections[connection].first_deliveries += run

    def _accept(self, event: Event) -> bool:
        race = self._race
        conflict: tuple[str, ...] = ()
        if race is not None:  # every live copy counts in the race, held ones and duplicates too
            identity = event.identity
            if identity is not None:
                conflict = race.observe(identity, event.kind, self.source, event.received_at, event)
        hold = self._hold
        if hold is not None and hold.since is not None:
            hold.take(event)
            return True
        identity = event.identity
        if identity is not None and not self._seen.add(identity):
            self.stats.duplicates += 1
            if conflict and self.merge.prefer.get(event.kind) == self.source:
                self.merge.prefer_copy(identity, event if self.label is None else event._replace(source=self.label))
            return False
        self._put(event)
        return True

    # -- gap recovery
    def attach_hold(self, hold: Hold) -> None:
        """The gap recovery's hold: live events go to it while it is in force."""
        self._hold = hold

    def expire_hold(self, since: float) -> int:
        """The hold that began at ``since`` passed its deadline: hand the held events on now and
        let live events go on until the next :meth:`hold` (the recovery goes on in the background;
        what it brings later arrives after them). How many were held; -1 if that hold is over."""
        assert self._hold is not None
        with self._lock:
            held = self._hold.expire(since)
            if held is None:
                return -1
            self._flush(held)
        self.queue.wake()
        return len(held)

    def end_hold(self, deferrals: int | None = None) -> bool:
        """End one hold and hand on the held events (de-duplicated) once no hold is left; True.

        With ``deferrals`` (the count when the caller's last round began): if live events were
        let go since, keep holding, stop deferring, and return False: the caller fetches again
        from where its history ended (the held events from now on complete that answer)."""
        assert self._hold is not None
        with self._lock:
            held = self._hold.end(deferrals)
            if held is None:
                return False
            self._flush(held)
        self.queue.wake()
        return True

    @property
    def newest(self) -> Position | None:
        """The newest (slot, signature) delivered, or None before the first event with a slot."""
        with self._lock:
            if self._newest_slot < 0:
                return None
            return Position(self._newest_slot, self._newest_signature)

    def room(self) -> int:
        """How many events the queue takes before it would drop one."""
        return self.capacity - self.queue.qsize()

    def release_backfill(self, events: Iterable[Event]) -> int:
        """Queue recovered events (the caller orders them and paces them to :meth:`room`); how many were new."""
        new = 0
        hold = self._hold
        with self._lock:
            seen = self._seen
            for event in events:
                if hold is not None:
                    skip, early = hold.for_history(event)
                    for live in early:  # held copies owed before this slot
                        self._put_once(live)
                    if skip:
                        continue
                identity = event.identity
                if identity is not None and not seen.add(identity):
                    self.stats.duplicates += 1
                    continue
                self._put(event)
                new += 1
            self.stats.backfill_events += new
        self.queue.wake()
        return new

    def release_refetched(self, events: list[Event]) -> int:
        """Queue the events of a live frame fetched again (the caller orders them); while a hold
        is in force they are held with the frame's live neighbours instead (``Hold.take_late``).
        How many were new or held."""
        hold = self._hold
        if hold is not None:
            with self._lock:
                if hold.since is not None:
                    return sum(hold.take_late(event) for event in events)
        return self.release_backfill(events)

    def _put_once(self, event: Event) -> bool:
        """Queue ``event`` unless its identity went out already (counted as a duplicate)."""
        identity = event.identity
        if identity is None or self._seen.add(identity):
            self._put(event)
            return True
        self.stats.duplicates += 1
        return False

    def _flush(self, held: list[Event]) -> None:
        """Hand on the events a hold kept, de-duplicated (under the lock)."""
        flushed = 0
        for event in held:
            if self._put_once(event):
                flushed += 1
                if not flushed % _WAKE_EVERY:
                    self.queue.wake()

    def free(self) -> None:
        """The client is closed: give back the de-duplication tables (megabytes) at once, and leave the merge."""
        with self._lock:
            self.merge.members[:] = [ref for ref in self.merge.members if ref() not in (self, None)]
            self._seen = SeenSet(1)
            if self._hold is not None:
                self._hold.free()

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
        if self.label is not None:
            event = event._replace(source=self.label)
        stats = self.stats
        stats.events[event.kind] += 1
        stats.connections[event.connection].first_deliveries += 1
        slot = event.slot
        if slot is not None:
            channel = event.channel
            if channel is not None and slot > self.last_slot.get(channel, -1):
                self.last_slot[channel] = slot
            if slot > self._newest_slot:
                self._newest_slot, self._newest_signature = slot, event.signature
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
        self.merge.owner(oldest, self)._dropped(oldest)

    def _dropped(self, event: Event) -> None:
        self.stats.dropped += 1
        identity = event.identity
        if identity is not None:
            self._seen.forget(identity)  # so that a backfill may bring it back
        if event.slot is not None and event.channel is not None:
            low = self.dropped_from.get(event.channel)
            if low is None or event.slot < low.slot:
                # The slot alone: a signature bounds Solana's history *after* it (``until`` excludes
                # the signature itself), and this event is the one to fetch again.
                self.dropped_from[event.channel] = Position(event.slot)

    def take_overflow_gaps(self) -> dict[str, Position]:
        """The channels and slots lost to overflow since the last call (for gap recovery)."""
        with self._lock:
            gaps, self.dropped_from = self.dropped_from, {}
        return gaps


def _slot_key(event: Event) -> int:
    return event.slot if event.slot is not None else -1
