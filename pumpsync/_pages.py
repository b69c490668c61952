"""One pass over a history (a round of gap recovery), released at the consumer's pace.

The history's pages (each sorted, in slot order from page to page) are merged into one stream
and queued a chunk at a time, each chunk only once the queue has room for it (never by dropping
older events): a gap of any size costs a chunk of memory.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pumpsync._delivery import Delivery
from pumpsync._gaps import STREAM, Gap
from pumpsync._hold import Hold
from pumpsync._stats import ClientStats
from pumpsync.events import Event
from pumpsync.providers.spec import HistorySource, Position

IDLE = 0.05  # seconds between looks at the queue's room, and at overflow, when there is nothing else to do


class Stopped(Exception):
    """The client is closing: the round ends where it is."""


@dataclass
class Pager:
    """What a round needs: the history, where its events go, and the pace."""

    source: HistorySource
    delivery: Delivery
    hold: Hold
    stats: ClientStats
    stop: threading.Event
    chunk: int  # events released at a time

    def round(self, gap: Gap, newest: dict[str, Position], edges: dict[str, tuple[int, set[Any]]]) -> tuple[int, int]:
        """One pass over the history from ``gap``'s positions, noting in ``newest`` the newest
        position released per key; (events fetched, new ones). A HistoryError comes after the
        events fetched before it were released."""
        source = self.source
        stop = self.stop
        if source.stream_wide:
            self.stats.backfill_requests += 1
            streams = [events_of(source.fetch(gap.filters, gap.positions[STREAM], stop))]
        else:
            streams = []
            for channel, position in gap.positions.items():
                self.stats.backfill_requests += 1
                streams.append(events_of(source.fetch({channel: gap.filters.get(channel, {})}, position, stop)))
        fetched = new = 0
        batch: list[Event] = []
        deferrals = self.hold.deferrals
        try:
            for event in heapq.merge(*streams, key=slot_key):
                batch.append(event)
                if len(batch) >= self.chunk:
                    new += self._release(batch, newest, edges, source.stream_wide)
                    fetched += len(batch)
                    batch = []
                    if self.hold.deferrals != deferrals:
                        break  # held events were let go: start over from where they were skipped
        finally:
            if batch and not self.stop.is_set():
                new += self._release(batch, newest, edges, source.stream_wide)
                fetched += len(batch)
        return fetched, new

    def _release(
        self,
        batch: list[Event],
        newest: dict[str, Position],
        edges: dict[str, tuple[int, set[Any]]],
        stream_wide: bool,
    ) -> int:
        """Queue ``batch`` once the consumer has made room for it (never by dropping older events)."""
        fresh: list[Event] = []
        for event in batch:
            slot = event.slot
            key = STREAM if stream_wide else event.channel
            if slot is None or key is None:
                fresh.append(event)
                continue
            edge = edges.get(key)
            if edge is not None and slot == edge[0] and event.identity in edge[1]:
                self.stats.duplicates += 1  # released in the last round
                continue
            fresh.append(event)
            if edge is None or slot > edge[0]:
                edges[key] = (slot, {event.identity})
                newest[key] = Position(slot, event.signature)
            elif slot == edge[0]:
                edge[1].add(event.identity)
        delivery = self.delivery
        # Held copies owed before a later slot may go out with this batch: room for them too.
        wanted = min(len(fresh) + self.hold.owed(), delivery.capacity)
        while delivery.room() < wanted:
            if self.stop.wait(IDLE):
                raise Stopped
        return delivery.release_backfill(fresh)


def events_of(pages: Iterable[list[Event]]) -> Iterator[Event]:
    """A source's pages as one stream of events in slot order (each page sorted; pages follow on)."""
    for page in pages:
        yield from sorted(page, key=slot_key)


def slot_key(event: Event) -> int:
    return event.slot if event.slot is not None else -1


__all__ = ["IDLE", "Pager", "Stopped", "events_of", "slot_key"]
