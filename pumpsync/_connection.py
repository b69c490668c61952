"""One connection slot: a thread that opens a session when told and reads it until it ends.

The session loop only. Bytes come from a transport (``_transport.py`` for WebSocket, or the
provider's own); what frames mean is the dialect's business (``providers/``); when to ping,
when a session is stale and when to reconnect is the supervisor's (``_supervisor.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

from pumpsync._backoff import retry_after
from pumpsync._feed_session import FeedPort, serve_feed
from pumpsync._framing import FrameTooLarge, ProtocolError, close_code, close_reason
from pumpsync._logsource import label_threads
from pumpsync._secrets import redact, safe_url
from pumpsync._stats import ConnectionStats
from pumpsync._threads import join_thread
from pumpsync._transport import WebSocketTransport
from pumpsync.config import ClientConfig
from pumpsync.errors import AuthenticationError, EndOfStream, PlanError, ProviderRefused
from pumpsync.events import Event
from pumpsync.providers.base import (
    Dialect,
    Dropped,
    Fatal,
    Hello,
    Malformed,
    Output,
    Pong,
    Reconnect,
    Reply,
    Subscription,
    Tick,
)
from pumpsync.providers.spec import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ConnectFailed,
    EventFeed,
    Outgoing,
    Transport,
    TransportClosed,
    UpgradeRefused,
)

if TYPE_CHECKING:
    from pumpsync._delivery import Delivery

log = logging.getLogger("pumpsync.connection")

# Close codes we send (RFC 6455).
_NORMAL, _PROTOCOL_ERROR, _TOO_BIG = 1000, 1002, 1009
# HTTP statuses on the upgrade that retrying cannot fix.
# 404/410: no stream at that path. Retrying the same wrong URL for a minute helps nobody.
_HTTP_REFUSALS: dict[int, type[ProviderRefused]] = {401: AuthenticationError, 403: PlanError, 404: ProviderRefused}
_HTTP_HINTS = {404: ": no stream at this URL's path, check --url/url= (the provider's stream path, e.g. /v1/stream)"}


@dataclass(frozen=True)
class Outcome:
    """How a session ended. ``reason`` is a bounded label (it becomes a metric label)."""

    reason: str
    code: int | None = None
    detail: str = ""
    refusal: ProviderRefused | EndOfStream | None = None
    rate_limited: bool = False
    opened: bool = False
    retry_after: float | None = None  # the server's Retry-After, seconds


@dataclass(frozen=True)
class Reports:
    """Where a connection reports (its owner's callbacks, given at construction: weak ones, see
    ``pumpsync._threads.upward``). ``opened``, ``ended`` and ``control`` run on the connection's
    thread with no lock of the connection held; ``control`` gets every non-event output except the
    ones the connection handles itself (``Malformed`` counts, ``Reply`` frames, ``Pong`` round
    trips); a ``Fatal`` output ends the session and reaches the owner once, as the refusal of
    ``ended``'s outcome. ``subscriptions`` is the registry's snapshot: it takes no lock (it is
    called under the connection's)."""

    opened: Callable[[Connection], None]
    ended: Callable[[Connection, Outcome], None]
    control: Callable[[Connection, Output], None]
    subscriptions: Callable[[], list[Subscription]]


class Connection:
    def __init__(
        self,
        index: int,
        config: ClientConfig,
        dialect_factory: Callable[[int, list[Subscription]], Dialect],
        delivery: Delivery,
        stats: ConnectionStats,
        reports: Reports,
        label: str = "",
    ) -> None:
        self.index = index
        self.config = config
        self.stats = stats
        spec = config.spec
        self._ws_ping = spec.heartbeat == "ws_ping"
        # A data frame of the kind the dialect does not read is counted (and still handed to it).
        self._foreign_opcode = {"text": OP_BINARY, "binary": OP_TEXT}.get(spec.frames)
        self._foreign_reason = "binary" if spec.frames == "text" else "text"
        self._pings = spec.heartbeat in ("app", "ws_ping")  # "server"/"none": we send no heartbeat
        # A source of events (spec.feed) runs a feed session instead (pumpsync/_feed_session.py).
        self.feed: EventFeed | None = None if spec.feed is None else spec.feed(config, index)
        self.transport: Transport
        if self.feed is None:
            self.transport = _with_send((spec.transport or WebSocketTransport)(config, index))
        else:
            self.transport = FeedPort(self.feed)
        bind = getattr(self.transport, "bind_queue", None)
        if bind is not None:  # a source that can outrun any consumer (a file) waits for the queue instead
            bind(delivery.queue)
        self._dialect_factory = dialect_factory
        self._delivery = delivery
        self._reports = reports
        self._go = threading.Event()
        self._stopping = False
        self.abort_reason: str | None = None
        # Guards the dialect and the outbox between the reader and other threads. Lock order
        # (docs/architecture.md): this -> the dialect's frames (pure) -> nothing; the registry's lock is
        # never held with it. Nothing is sent and no owner or user code runs while it is held.
        self._lock = threading.Lock()
        self._outbox: deque[Outgoing] = deque()  # frames in the order the dialect made them
        self._flushing = False  # one thread at a time sends the outbox, so frames keep that order
        self.dialect: Dialect | None = None
        self.sessions = 0
        # read by the supervisor
        self.opened_at: float | None = None  # monotonic
        self.last_rx = 0.0  # monotonic: anything at all (the socket is alive)
        self.last_data = 0.0  # monotonic: a frame other than a pong or a clock tick (the data flows)
        self.last_tick: float | None = None  # monotonic: the source's clock advanced (spec.data_clock)
        self.ping_sent_at: float | None = None
        self.next_ping_at = 0.0
        self.hello: dict[str, object] | None = None
        self._thread = threading.Thread(target=self._run, name=f"pumpsync-conn-{index}", daemon=True)
        label_threads(label or config.provider, self._thread)  # its log lines name the source

    # ------------------------------------------------------------------ control from other threads
    def start(self) -> None:
        self._thread.start()

    def go(self) -> None:
        """Start the next connection attempt (the supervisor decides when)."""
        self._go.set()

    def abort(self, reason: str) -> None:
        """End the current session at once (stale socket, fatal error, close)."""
        self.abort_reason = reason
        self.transport.abort()

    def stop(self) -> None:
        """Close politely (1000) and end the thread; returns at once, see :meth:`join`."""
        self._stopping = True
        self._go.set()
        self.with_dialect(lambda d: d.on_close())  # e.g. logsUnsubscribe; nothing is sent if not open
        self.transport.close(_NORMAL)
        self.abort("client_close")

    def join(self, timeout: float) -> bool:
        return join_thread(self._thread, timeout)

    @property
    def alive(self) -> bool:
        """The thread runs, or has not been started yet (the supervisor reports one that ended early)."""
        return self._thread.is_alive() or self._thread.ident is None or self._stopping

    def send(self, data: Outgoing) -> bool:
        """Thread-safe send; False if there is no open session."""
        return self.transport.send(data)

    def send_ping(self) -> bool:
        """The heartbeat: the dialect's ping message, or a WebSocket ping frame (``ws_ping``)."""
        if not self._pings:
            return False
        if self._ws_ping:
            self.ping_sent_at = time.monotonic()
            sent = self.transport.send_ping()
        else:
            with self._lock:
                frame = self.dialect.ping() if self.dialect is not None else None
            if frame is None:
                return False
            self.ping_sent_at = time.monotonic()
            sent = self.send(frame)
        if sent:
            self.stats.pings_sent += 1
        return sent

    def with_dialect(self, action: Callable[[Dialect], list[Outgoing]]) -> bool:
        """Run ``action`` on the live dialect and send the frames it returns, after any frames
        other threads' actions (or the reader's replies) made before (False: no dialect, or a send failed)."""
        with self._lock:
            if self.dialect is None:
                return False
            self._outbox.extend(action(self.dialect))
        return self._flush()

    def _flush(self) -> bool:
        """Send the outbox in order, outside the lock; one thread at a time (another one that is
        sending already takes these too: True)."""
        with self._lock:
            if self._flushing:
                return True
            self._flushing = True
        sent = True
        done = False
        try:
            while True:
                with self._lock:
                    if not self._outbox:
                        self._flushing, done = False, True  # in the same hold: no frame is left behind
                        return sent
                    frame = self._outbox.popleft()
                sent = self.send(frame) and sent
        finally:
            if not done:  # an exception out of send: let the next caller send
                with self._lock:
                    self._flushing = False

    @property
    def is_open(self) -> bool:
        return self.stats.state == "open"

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # never silent: logged here; the supervisor sees the thread gone and fails the client
            log.critical("connection %d: the connection thread failed", self.index, exc_info=True)

    def _loop(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            if self._stopping:
                break
            try:
                outcome = self._session()
            except Exception as exc:  # a bug of ours must not silently kill the slot: report, reconnect
                log.exception("connection %d: unexpected error", self.index)
                outcome = Outcome("internal_error", detail=redact(repr(exc), self.config.api_key))
            finally:
                self.transport.shutdown()
            self.opened_at = None
            if self._stopping:
                self.stats.set_state("closed")
                break
            self._reports.ended(self, outcome)
        self.stats.set_state("closed")

    def _session(self) -> Outcome:
        if self.feed is not None:
            self.abort_reason = None
            self.hello = None
            return serve_feed(self, self.feed, self._reports.subscriptions(), Outcome)
        config = self.config
        with self._lock:
            previous = self.dialect
            self._outbox.clear()  # the last session's frames are not this one's
            # Read under this lock so that a subscribe() either lands in the snapshot or reaches this
            # dialect afterwards; the snapshot takes no lock (the registry is copy-on-write).
            self.dialect = dialect = self._dialect_factory(self.index, self._reports.subscriptions())
            if previous is not None:
                dialect.resume(previous)  # what the last session learned (Anaxer: the wire form)
        url = config.url_of(self.index)
        handshake = dialect.handshake(url, config.api_key, config.auth)
        self.abort_reason = None
        self.hello = None
        self.stats.attempts += 1
        self.stats.set_state("connecting")
        log.debug("connection %d: connecting to %s", self.index, safe_url(handshake.url))
        try:
            self.transport.open(handshake.url, handshake.headers)
        except UpgradeRefused as exc:
            return self._http_refusal(exc.status, exc.headers)
        except ConnectFailed as exc:
            return Outcome(self.abort_reason or "connect_failed", detail=redact(exc.detail, config.api_key))
        if self.abort_reason is not None:  # close() came while we were connecting
            return Outcome(self.abort_reason)
        return self._serve(dialect)

    def _serve(self, dialect: Dialect) -> Outcome:
        self.mark_open()
        self.with_dialect(lambda d: d.on_open())
        return self._read(dialect)

    def mark_open(self) -> None:
        self.sessions += 1
        now = time.monotonic()
        self.opened_at = self.last_rx = self.last_data = now
        self.last_tick = None
        self.ping_sent_at = None
        self.next_ping_at = now + self.config.ping_interval
        self.stats.connects += 1
        self.stats.set_state("open")
        log.info("connection %d: open", self.index)
        self._reports.opened(self)

    def _read(self, dialect: Dialect) -> Outcome:
        """Read the session until it ends (the hot loop)."""
        # why long: every frame of the stream passes here, so the loop binds what it uses to locals
        # once and handles each opcode inline; a call per frame and per output to a helper costs
        # measurably at bulk rates (``pumpsync bench``).
        transport = self.transport
        read = transport.read
        stats = self.stats
        lock = self._lock
        events: list[Event] = []
        while True:
            if self.abort_reason is not None:
                return Outcome(self.abort_reason, opened=True)
            try:
                size, frames = read()
            except TransportClosed as exc:
                detail = redact(str(exc), self.config.api_key)
                return Outcome(self.abort_reason or "dropped", detail=detail, opened=True)
            if not size:
                continue
            wall = time.time()
            self.last_rx = time.monotonic()
            stats.bytes += size
            stats.last_frame_at = wall
            received_at = int(wall * 1000)
            try:
                for opcode, payload in frames:
                    if opcode == OP_TEXT or opcode == OP_BINARY:
                        stats.frames += 1
                        if opcode == self._foreign_opcode:
                            stats.malformed[self._foreign_reason] += 1
                        with lock:
                            outputs = dialect.receive(payload, received_at)
                            for out in outputs:  # replies join the outbox in the dialect's order
                                if type(out) is Reply:
                                    self._outbox.append(out.text)
                        if outputs and type(outputs[0]) is Tick:
                            self.last_tick = self.last_rx  # the clock; pongs and ticks never refresh last_data
                            continue
                        self.last_data = self.last_rx
                        for out in outputs:
                            if type(out) is Event:
                                events.append(out)
                            else:
                                if events:  # what came before a control message goes first
                                    self.hand_on(events, wall)
                                ended = self.handle_control(out)
                                if ended is not None:
                                    return ended
                    elif opcode == OP_CLOSE:
                        transport.close(close_code(payload) or _NORMAL)  # the closing handshake
                        return self._closed_by_server(dialect, payload)
                    elif opcode == OP_PING:
                        transport.send_pong(payload)
                    elif opcode == OP_PONG and self._ws_ping:
                        self._ponged()
            except FrameTooLarge as exc:
                stats.malformed["oversized"] += 1
                log.warning("connection %d: %s; closing with 1009", self.index, exc)
                transport.close(_TOO_BIG)
                return Outcome("oversized", code=1009, opened=True)
            except ProtocolError as exc:
                stats.malformed["protocol"] += 1
                log.warning("connection %d: protocol error: %s; closing with 1002", self.index, exc)
                transport.close(_PROTOCOL_ERROR)
                return Outcome("protocol", code=1002, opened=True)
            finally:
                # A read's events go on together, under one acquisition of the delivery lock (in
                # bulk a 64 KiB read carries about 190 of them). This runs before any way out of
                # the block returns its Outcome (whose error, if any, is queued after them); only a
                # control message, which may queue something at once, hands them on first.
                if events:
                    self.hand_on(events, wall)

    def hand_on(self, events: list[Event], wall: float) -> None:
        self.stats.last_event_at = wall
        self._delivery.deliver_all(events)
        events.clear()

    def _ponged(self) -> None:
        sent = self.ping_sent_at
        self.stats.pongs += 1
        if sent is not None:
            rtt = time.monotonic() - sent
            self.stats.rtt.observe(rtt)
            self.stats.last_rtt = rtt
            self.ping_sent_at = None

    def handle_control(self, out: Output) -> Outcome | None:
        """A non-event output: the connection's own ones here, the rest to the owner (once).
        An Outcome ends the session."""
        if isinstance(out, Malformed):
            self.stats.malformed[out.reason] += 1
        elif isinstance(out, Dropped):
            self.stats.filtered[out.reason] += 1
        elif isinstance(out, Reply):
            self._flush()  # queued in order with the other threads' frames when the dialect made it
        elif isinstance(out, Pong):
            self._ponged()
        elif isinstance(out, Fatal):
            return Outcome("refused", refusal=out.error, opened=True)  # the owner hears of it in session_ended
        elif isinstance(out, Reconnect):
            detail = redact(out.message, self.config.api_key)
            return Outcome(out.reason, detail=detail, rate_limited=out.rate_limited, opened=True)
        else:
            if isinstance(out, Hello):
                self.hello = dict(out.info)
            self._reports.control(self, out)
        return None

    def _closed_by_server(self, dialect: Dialect, payload: bytes) -> Outcome:
        code = close_code(payload)
        reason = close_reason(payload)
        policy = dialect.close_policy(code)
        refusal = None
        if policy.refusal is not None:
            refusal = policy.refusal(
                f"{dialect.provider} closed the connection with {code} ({policy.meaning})",
                provider=dialect.provider,
                close_code=code,
            )
        detail = f"{code} {policy.meaning}" + (f": {reason}" if reason else "")
        return Outcome(
            "closed",
            code=code,
            detail=redact(detail, self.config.api_key),
            refusal=refusal,
            rate_limited=policy.rate_limited,
            opened=True,
        )

    def _http_refusal(self, status: int, headers: dict[str, str]) -> Outcome:
        provider = self.config.provider
        # The provider's own reading of the status first (PumpPortal: a 403 is a ban, not a plan refusal).
        policy = self.dialect.http_policies.get(status) if self.dialect is not None else None
        refusal_cls = policy.refusal if policy is not None else _HTTP_REFUSALS.get(status)
        refusal = None
        if refusal_cls is not None:
            hint = _HTTP_HINTS.get(status, "")
            message = f"{provider} refused the WebSocket upgrade with HTTP {status}{hint}"
            refusal = refusal_cls(message, provider=provider)
        try:
            phrase = f" {HTTPStatus(status).phrase}"
        except ValueError:
            phrase = ""
        return Outcome(
            f"http_{status}" if status in (401, 403, 429, 503) else "http_error",
            detail=f"the WebSocket upgrade was answered with HTTP {status}{phrase}"
            + (f": {policy.meaning}" if policy is not None else ""),
            refusal=refusal,
            rate_limited=status == 429 or (policy is not None and policy.rate_limited),
            retry_after=retry_after(headers.get("retry-after") or headers.get("Retry-After"), 0.0) or None,
        )


def _with_send(transport: Transport) -> Transport:
    """A transport written before ``send(str | bytes)`` (it has ``send_text`` only): still served
    for one release, with a DeprecationWarning (see CHANGELOG)."""
    if callable(getattr(transport, "send", None)) or not callable(getattr(transport, "send_text", None)):
        return transport
    warnings.warn(
        f"{type(transport).__name__}.send_text() is deprecated: implement send(data: str | bytes) (Transport)",
        DeprecationWarning,
        stacklevel=4,
    )
    send_text = transport.send_text  # type: ignore[attr-defined]
    transport.send = lambda data: send_text(data if isinstance(data, str) else data.decode())  # type: ignore[method-assign]
    return transport
