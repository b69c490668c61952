"""A feed session: what a connection thread runs for a source of events (``ProviderSpec.feed``).

A recording or a Redis stream hands over events, not frames: no handshake, no dialect, no
heartbeat to answer. The connection (``_connection.py``) runs :func:`serve_feed` instead of its
transport + dialect session and keeps everything else: the supervisor's timing (every ``read``
that returns proves the feed alive), the delivery of events a read at a time, and its own handling
of control outputs (``Malformed`` counted, ``Fatal`` ends the session, the rest to the owner).
This is the connection's own session code, kept in a module of its own: it uses the connection's
session members (:class:`FeedHost`) as the frame loop does, and builds its ``Outcome`` through the
class it is given (this module imports nothing of ``_connection.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pumpsync._secrets import redact
from pumpsync.errors import EndOfStream, ProviderRefused, PumpsyncError
from pumpsync.events import Event
from pumpsync.providers.spec import ConnectFailed, EventFeed, Outgoing, TransportClosed

if TYPE_CHECKING:
    from pumpsync._stats import ConnectionStats
    from pumpsync.config import ClientConfig
    from pumpsync.providers.base import Output, Subscription

R = TypeVar("R")  # the connection's Outcome
R_co = TypeVar("R_co", covariant=True)


class FeedHost(Protocol[R_co]):
    """What a feed session uses of its connection (``pumpsync._connection.Connection``)."""

    config: ClientConfig
    stats: ConnectionStats
    last_rx: float  # monotonic, read by the supervisor: the feed answered
    last_data: float  # monotonic: an item arrived
    abort_reason: str | None  # set from any thread: end the session

    def mark_open(self) -> None: ...  # the session is open: the bookkeeping, and the owner told
    def hand_on(self, events: list[Event], wall: float) -> None: ...  # to the delivery, together
    def handle_control(self, out: Output) -> R_co | None: ...  # a control output; an Outcome ends the session


def serve_feed(conn: FeedHost[R], feed: EventFeed, subscriptions: list[Subscription], Outcome: Callable[..., R]) -> R:
    """One session of ``feed`` on ``conn``'s thread: open, then read until the feed ends, drops, or
    the connection is aborted (its ``Outcome``, as a frame session's)."""
    key = conn.config.api_key
    conn.stats.attempts += 1
    conn.stats.set_state("connecting")
    try:
        feed.open(subscriptions)
    except ConnectFailed as exc:
        return Outcome(conn.abort_reason or "connect_failed", detail=redact(exc.detail, key))
    except PumpsyncError as exc:  # retrying cannot fix it (a refused password): the client fails with it
        refusal = exc if isinstance(exc, (ProviderRefused, EndOfStream)) else _refused(exc, conn.config.provider)
        return Outcome("refused", detail=redact(str(exc), key), refusal=refusal)
    if conn.abort_reason is not None:  # close() came while we were opening
        return Outcome(conn.abort_reason)
    conn.mark_open()
    return _read(conn, feed, Outcome)


def _read(conn: FeedHost[R], feed: EventFeed, Outcome: Callable[..., R]) -> R:
    stats = conn.stats
    read = feed.read
    seen: int | None = getattr(feed, "received_bytes", None)  # optional: a running total of the feed's
    events: list[Event] = []
    while True:
        if conn.abort_reason is not None:
            return Outcome(conn.abort_reason, opened=True)
        try:
            outputs = read()
        except TransportClosed as exc:
            detail = redact(str(exc), conn.config.api_key)
            return Outcome(conn.abort_reason or "dropped", detail=detail, opened=True)
        now = time.monotonic()
        wall = time.time()
        # Any answer, "nothing new" too, proves the feed alive (as a pong does a socket: the last
        # frame's time stays the source's last sign of life).
        conn.last_rx = now
        stats.last_frame_at = wall
        if seen is not None:
            total: int = getattr(feed, "received_bytes", seen)
            stats.bytes += total - seen
            seen = total
        if not outputs:
            continue
        conn.last_data = now
        stats.frames += len(outputs)  # one item read: an event, or what stood for one
        try:
            for out in outputs:
                if type(out) is Event:
                    events.append(out)
                    continue
                if events:  # what came before a control output goes first
                    conn.hand_on(events, wall)
                ended = conn.handle_control(out)
                if ended is not None:
                    return ended
        finally:
            if events:  # a read's events go on together, before any way out returns its Outcome
                conn.hand_on(events, wall)


def _refused(error: PumpsyncError, provider: str) -> ProviderRefused:
    refusal = ProviderRefused(str(error), provider=provider)
    refusal.__cause__ = error
    return refusal


class FeedPort:
    """A feed connection's ``transport``: what the connection's lifecycle calls reach (``abort``,
    ``shutdown``, the client's ``bind_queue``), so that they need no branch. It carries no frames:
    the feed session reads the feed itself (``open``/``read`` are never called), and sends are
    refused. A feed class's ``metrics_collector`` is found through its ``feed`` attribute
    (``pumpsync.metrics.extra_collectors`` unwraps it)."""

    def __init__(self, feed: EventFeed) -> None:
        self.feed = feed

    def open(self, url: str, headers: Any) -> None:
        raise TypeError("a feed is opened by its session (pumpsync/_feed_session.py)")

    def read(self) -> tuple[int, Iterable[tuple[int, bytes]]]:
        raise TypeError("a feed is read by its session (pumpsync/_feed_session.py)")

    def send(self, data: Outgoing) -> bool:
        return False

    def send_ping(self, payload: bytes = b"") -> bool:
        return False

    def send_pong(self, payload: bytes) -> None:
        return None

    def close(self, code: int) -> None:
        return None  # nothing to say goodbye to: abort() follows

    def abort(self) -> None:
        self.feed.abort()

    def shutdown(self) -> None:
        self.feed.shutdown()

    def bind_queue(self, queue: Any) -> None:
        bind = getattr(self.feed, "bind_queue", None)
        if bind is not None:  # a source that can outrun any consumer (a file) waits for the queue instead
            bind(queue)


__all__ = ["FeedPort", "serve_feed"]
