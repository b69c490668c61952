"""The consumer's side of a client's queue: :meth:`pumpsync.Client.get` once the client is known
to be started, with the bookkeeping of the event in hand (a feed that acknowledges what the consumer
took hears of it when the consumer asks for the next one, or when the client closes) and the race's
conflict warnings (on the consumer's thread, with no lock held)."""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pumpsync._delivery import Item
from pumpsync._handoff import HandOffQueue
from pumpsync.errors import ClientClosed, PumpsyncError

if TYPE_CHECKING:
    from pumpsync._sources import ConflictWarnings
    from pumpsync.events import Event

Takers = Sequence[Callable[["Event"], None] | None]


class Consumer:
    """Reads the queue for any number of threads; the event in hand is the last one handed over
    (one consumer acknowledges: a feed that acknowledges is only used by a client of one source)."""

    def __init__(self, events: HandOffQueue[Item], takers: Takers | None, conflicts: ConflictWarnings | None) -> None:
        self.queue = events
        self.takers = takers  # per connection: what tells its feed the consumer is done with an event
        self.conflicts = conflicts
        self.in_hand: Event | None = None  # the event get() handed over last, of a feed that acknowledges

    def get(self, timeout: float | None, closed: bool) -> Event:
        """The next event, or the error item raised; ``closed``: what is left, then ClientClosed at once
        (never a wait on a closed client)."""
        if self.conflicts is not None:
            self.conflicts.warn()
        takers = self.takers
        if takers is not None:  # asking for the next event: the consumer is done with the one in hand
            self.consumed()
        if closed:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                raise ClientClosed("the client was closed") from None
        else:
            item = self.queue.get(timeout=timeout)
        if isinstance(item, PumpsyncError):
            if item.fatal or isinstance(item, ClientClosed):
                self.queue.put(item)  # keep it there for the next reader
            raise item
        if takers is not None and takers[item.connection] is not None:
            self.in_hand = item
        return item

    def consumed(self) -> None:
        """Tell the feed of the event in hand that the consumer is done with it (on the consumer's thread)."""
        event, self.in_hand = self.in_hand, None
        consumed = None if event is None or self.takers is None else self.takers[event.connection]
        if event is not None and consumed is not None:
            consumed(event)


__all__ = ["Consumer"]
