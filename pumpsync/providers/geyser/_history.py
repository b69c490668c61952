"""Gap recovery for ``geyser``: the server's replay first, RPC history where the replay cannot reach.

A resumed session asks the server for ``from_slot`` (the dialect): while the server still has that
slot, the replay is the gap's recovery and there is nothing to fetch. Where it no longer has it (the
call ends with OUT_OF_RANGE, or a message over the receive limit made the session skip ahead), the
transport notes it in the client's ``ReplayBook`` and the gap comes from the Solana source's own
history code over HTTP JSON-RPC (``rest_url``, this provider's RPC URL); without one the gap is
reported lost (``HistoryError``), never skipped silently.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pumpsync.providers.geyser._counts import COUNTS
from pumpsync.providers.solana import CHANNELS
from pumpsync.providers.spec import HistoryError, Position

if TYPE_CHECKING:
    from pumpsync.events import Event
    from pumpsync.providers.solana_history import SolanaHistory
    from pumpsync.providers.spec import ClientConfig


class ReplayBook:
    """What the client's sessions learned about the server's replay (one per client, thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beyond: int | None = None  # the first slot the server still had, or 0: unknown

    def refused(self, first_available: int | None) -> None:
        with self._lock:
            self._beyond = first_available or 0

    def beyond(self) -> int | None:
        """None: the replay served every resume since the last fetch; else the first slot it had (0: unknown)."""
        with self._lock:
            return self._beyond

    def filled(self) -> None:
        with self._lock:
            self._beyond = None


_BOOKS: dict[int, ReplayBook] = {}
_BOOKS_LOCK = threading.Lock()


def book_for(config: ClientConfig) -> ReplayBook:
    """The ``ReplayBook`` of the client whose configuration this is (the transports and the history
    of one client share it; it goes with the configuration)."""
    key = id(config)
    with _BOOKS_LOCK:
        book = _BOOKS.get(key)
        if book is None:
            book = _BOOKS[key] = ReplayBook()
            weakref.finalize(config, _forget, key)
    return book


def _forget(key: int) -> None:
    # A finalizer runs wherever the collector does: also inside ``book_for``'s critical section, on
    # the thread that holds _BOOKS_LOCK (a plain lock: taking it here deadlocked that thread). One
    # dict.pop is atomic: no lock needed.
    _BOOKS.pop(key, None)


class GeyserHistory:
    """The ``HistorySource`` of ``geyser`` (stream-wide, like Solana's)."""

    stream_wide = True

    def __init__(self, config: ClientConfig) -> None:
        self._book = book_for(config)
        self._rpc: SolanaHistory | None = None
        self._lost_since: int | None = None  # the gap reported lost (without rpc), for its retries
        self._head: int | None = None  # the RPC node's slot when the stream went live (``head``)
        if config.rest_url:
            from pumpsync.providers.solana_history import SolanaHistory

            # The RPC node is another operator: the geyser token never goes there (its own key, if
            # any, is in rest_url, and redacted as every URL is).
            self._rpc = SolanaHistory(replace(config, api_key=None, network=replace(config.network, auth="none")))

    def recoverable(self, channel: str) -> bool:
        return channel in CHANNELS

    def head(self, stop: threading.Event) -> Position | None:
        """Where the chain is now, for a gap before the first event: the RPC node's slot. Such a
        gap is the RPC's to fetch (the replay resumes only where an event or a slot update was
        seen). Without a node it is reported lost: the replay may still have brought it back."""
        if self._rpc is None:
            raise HistoryError(
                "no rest_url (an RPC node) is set to tell it; the server's replay may have brought it back"
            )
        position = self._rpc.head(stop)
        if position is not None:
            self._head = position.slot
        return position

    def fetch(
        self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: threading.Event
    ) -> Iterator[list[Event]]:
        beyond = self._book.beyond()
        from_head = self._head is not None and since.slot <= self._head  # begun before any event
        if beyond is None and since.slot != self._lost_since and not from_head:
            return  # the server's replay brought the gap back (de-duplicated by the dialect)
        where = f"first available: {beyond}" if beyond else "the server did not say where it begins"
        if self._rpc is None:
            if since.slot != self._lost_since:
                self._book.filled()  # this gap's (its retries raise again: it stays lost)
                self._lost_since = since.slot
                COUNTS.add("gaps_lost")
            raise HistoryError(
                f"the geyser server's replay no longer reaches slot {since.slot} ({where}) and no rest_url "
                "(an RPC node) is set to fetch the rest from: the gap is lost"
            )
        yield from self._rpc.fetch(channels, since, stop)
        self._book.filled()
        COUNTS.add("gaps_filled_rpc")

    def close(self) -> None:
        if self._rpc is not None:
            self._rpc.close()

    def stats(self) -> dict[str, int]:
        return self._rpc.stats() if self._rpc is not None else {}

    def lost(self) -> int:
        return self._rpc.lost() if self._rpc is not None else 0


def make_history(config: ClientConfig) -> GeyserHistory:
    return GeyserHistory(config)


__all__ = ["GeyserHistory", "ReplayBook", "book_for", "make_history"]
