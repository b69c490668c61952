"""The hold: live events kept back while gap recovery fetches what came before them.

One word across code, metrics and docs: live events are *held* (``stats.held``, the
``pumpsync_held_events`` gauge), a hold is *released* at its deadline (``gap_deadline``; the gap
report's ``released``, the ``released`` gap count), and held events past the bound are *deferred*
(let go for the history to bring back: the ``deferred`` gap count).

The gap recovery (``_recovery.py``) owns the hold: it creates it, attaches it to its delivery,
begins it when a gap opens and ends it (through the delivery, which hands the held events on
atomically with the hold's end). While a hold is in force the delivery gives each live event to
:meth:`Hold.take` instead of the queue. A history event that is also held is skipped, and its
held (live) copy follows the backfill — unless the history goes on to a later slot that was not
held (the live stream missed it: another drop meanwhile); then the held copies skipped so far go
out first (:meth:`Hold.for_history`), so that slot order holds. Past ``capacity`` held events
they are all let go, the live stream is deferred (dropped, counted) and the recovery fetches
again from the oldest history event it skipped for a held copy still owed, until it has caught up.
A live frame fetched again (its log cut, its PumpSwap pool not known yet) while a hold is in
force is held too, in its slot's place (:meth:`Hold.take_late`); the recovery fetches those
before it ends a hold.

Locking: the hold has no lock of its own; it is guarded by the delivery's lock (the merge's, one
for every source). :meth:`begin` and :meth:`take_refetch` take that lock themselves; every other
method is called by the delivery with it held. The read-only properties read one attribute.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pumpsync._stats import ClientStats
from pumpsync.events import Event
from pumpsync.providers.spec import Position


class Hold:
    """One source's held live events (see the module docs)."""

    def __init__(self, capacity: int, stats: ClientStats, lock: threading.Lock) -> None:
        self.capacity = capacity
        self._stats = stats
        self._lock = lock  # the delivery's
        self._count = 0  # holds in force (a carried gap's and a new one's may overlap)
        # When the hold in force began (monotonic); None: no hold, or it was released at its deadline
        # (live events go on until the next begin()). The recovery's deadline watch reads it.
        self.since: float | None = None
        self.deferred = 0  # live events let go while deferring (the history is to bring them back)
        self.deferrals = 0  # how often that happened (a recovery round compares it before and after)
        self._deferring = False  # the held events overflowed: live events are let go until caught up
        self._held: deque[Event] = deque()
        self._held_ids: dict[tuple[Any, ...], Event] = {}  # identity -> the first held copy
        # History events skipped for their held copy, by slot: that copy is owed before any later
        # slot goes out. If the held events are let go, the recovery fetches again from the oldest.
        self._owed: list[tuple[int, int, Event, Position]] = []  # (slot, tie-break, held copy, history's position)
        self._owed_ids: set[tuple[Any, ...]] = set()
        self._owed_seq = itertools.count()
        self._sent_early: set[int] = set()  # id() of held copies that went out in the history's place
        self._refetch_from: dict[str, Position] = {}

    # ------------------------------------------------------------------ the recovery's (locks itself)
    def begin(self) -> None:
        """Keep live events back until the delivery's ``end_hold`` (a recovery is starting)."""
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
            self._count += 1

    @property
    def active(self) -> bool:
        """Live events are being held now (a hold in force, not released at its deadline)."""
        return self.since is not None

    def owed(self) -> int:
        """Held copies whose history copy was skipped: a later slot puts them before itself."""
        return len(self._owed)

    def take_refetch(self) -> dict[str, Position]:
        """Where the recovery must fetch again because held events it skipped were let go."""
        with self._lock:
            refetch, self._refetch_from = self._refetch_from, {}
        return refetch

    # ------------------------------------------------------------------ the delivery's (its lock held)
    def take(self, event: Event) -> None:
        """A live event while the hold is in force."""
        if self._deferring:
            self.deferred += 1
            return  # the recovery's next round fetches it from history
        held = self._held
        if len(held) >= self.capacity:  # bounded: let them all go, history will bring them in order
            self.deferred += len(held) + 1
            self._stats.held -= len(held)
            held.clear()
            self._held_ids.clear()
            self._sent_early.clear()
            for _slot, _seq, live, position in self._owed:
                channel = live.channel
                if channel is not None:
                    low = self._refetch_from.get(channel)
                    if low is None or position < low:
                        self._refetch_from[channel] = position
            self._clear_owed()
            self._deferring = True
            self.deferrals += 1
            return
        held.append(event)
        identity = event.identity
        if identity is not None:
            self._held_ids.setdefault(identity, event)
        self._stats.held += 1

    def take_late(self, event: Event) -> bool:
        """An event of a live frame fetched again (its log cut, its pool unknown) while the hold is
        in force: held in its slot's place, since the live events held after its frame are newer
        (queued at once, it went out after them, or before the gap). False: a copy is held already."""
        identity = event.identity
        if identity is not None and (identity in self._held_ids or identity in self._owed_ids):
            return False
        held = self._held
        if self._deferring or len(held) >= self.capacity:
            self.take(event)  # the same bound and deferral as any live event: the history brings it
            return True
        index, slot = len(held), event.slot
        if slot is not None:
            while index and (newer := held[index - 1].slot) is not None and newer > slot:
                index -= 1
        held.insert(index, event)
        if identity is not None:
            self._held_ids.setdefault(identity, event)
        self._stats.held += 1
        return True

    def expire(self, since: float) -> list[Event] | None:
        """The hold that began at ``since`` passed its deadline: it ends now (live events go on
        until the next :meth:`begin`); the held events to hand on. None if that hold is over."""
        if self.since != since or not self._count:
            return None
        self.since = None
        self._deferring = False
        return self._drain()

    def end(self, deferrals: int | None) -> list[Event] | None:
        """End one hold: the held events to hand on once no hold is left (else []). With
        ``deferrals`` (the count when the caller's last round began): if live events were let go
        since, keep holding, stop deferring and return None (the caller fetches again)."""
        if deferrals is not None and self.deferrals != deferrals:
            self._deferring = False
            return None
        if self._count:
            self._count -= 1
        if self._count:
            return []
        self.since = None
        self._deferring = False
        return self._drain()

    def for_history(self, event: Event) -> tuple[bool, list[Event]]:
        """A history event about to be queued: whether to skip it (its held copy follows), and
        the held copies that must go out before it (in slot order; the final flush skips them)."""
        identity = event.identity
        slot = event.slot
        early: list[Event] = []
        owed = self._owed
        if identity is not None and (self._held_ids or self._owed_ids):
            live = self._held_ids.pop(identity, None) if self._held_ids else None
            if live is not None or identity in self._owed_ids:  # held: that copy follows
                self._stats.duplicates += 1
                if live is not None and slot is not None:
                    heapq.heappush(owed, (slot, next(self._owed_seq), live, Position(slot, event.signature)))
                    self._owed_ids.add(identity)
                elif live is not None:  # no slot to order by: it goes out here
                    early.append(self._early(live))
                return True, early
        if owed and slot is not None and owed[0][0] < slot:
            # A later slot the live stream missed: the held copies of earlier slots go first.
            while owed and owed[0][0] < slot:
                early.append(self._early(heapq.heappop(owed)[2]))
        return False, early

    def free(self) -> None:
        """The client is closed: let the held events go."""
        self._stats.held -= len(self._held)
        self._held.clear()
        self._held_ids.clear()
        self._sent_early.clear()
        self._clear_owed()

    def _early(self, live: Event) -> Event:
        identity = live.identity
        if identity is not None:
            self._owed_ids.discard(identity)
        self._sent_early.add(id(live))  # it stays in the held deque, so its id() is not reused
        return live

    def _clear_owed(self) -> None:
        self._owed.clear()
        self._owed_ids.clear()

    def _drain(self) -> list[Event]:
        """Every held event not sent early yet, in arrival order; the hold is empty after."""
        sent_early = self._sent_early
        out = [event for event in self._held if not (sent_early and id(event) in sent_early)]
        self._stats.held -= len(self._held)
        self._held.clear()
        self._held_ids.clear()
        sent_early.clear()
        self._clear_owed()
        return out


def watch_deadline(
    hold: Hold,
    deadline: float,
    stop: threading.Event,
    expire: Callable[[float], int],
    release: Callable[[Callable[[], int], float], None],
) -> None:
    """Until ``stop``: a hold in force for ``deadline`` seconds is released, no hold waits longer.
    ``expire(since)`` hands the held events on (the delivery's); ``release(expire_it, deadline)``
    does it and marks the pending gaps released (the recovery's ledger)."""
    while not stop.is_set():
        since = hold.since
        now = time.monotonic()
        if since is None or now < since + deadline:
            wait = 0.25 if since is None else min(0.25, since + deadline - now)
            stop.wait(max(0.01, wait))
            continue
        release(functools.partial(expire, since), deadline)


__all__ = ["Hold", "watch_deadline"]
