"""One connection slot: a thread that opens a socket when told and reads it until it ends.

Transport only. What frames mean is the dialect's business (``providers/``); when to ping,
when a socket is stale and when to reconnect is the supervisor's (``_supervisor.py``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import websocket

from pumpsync._framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameDecoder,
    FrameTooLarge,
    ProtocolError,
    close_code,
    close_reason,
)
from pumpsync._secrets import redact
from pumpsync._stats import ConnectionStats
from pumpsync.config import ClientConfig
from pumpsync.errors import AuthenticationError, PlanError, ProviderRefused
from pumpsync.events import Event
from pumpsync.providers.base import (
    Dialect,
    Fatal,
    Hello,
    Malformed,
    Notice,
    Output,
    Pong,
    Rejected,
    Reply,
    StatusReport,
    Subscribed,
    Subscription,
    Unsubscribed,
)

if TYPE_CHECKING:
    from pumpsync._delivery import Delivery

log = logging.getLogger("pumpsync.connection")

_READ_SIZE = 256 * 1024
# The reader wakes this often even when nothing arrives, so that close() never waits on a
# socket that a broken network left half-open.
_READ_TICK = 0.5
# HTTP statuses on the upgrade that retrying cannot fix.
_PROXY_SCHEMES = ("http", "socks4", "socks4a", "socks5", "socks5h")
_HTTP_REFUSALS: dict[int, type[ProviderRefused]] = {401: AuthenticationError, 403: PlanError}


@dataclass(frozen=True)
class Outcome:
    """How a session ended. ``reason`` is a bounded label (it becomes a metric label)."""

    reason: str
    code: int | None = None
    detail: str = ""
    refusal: ProviderRefused | None = None
    rate_limited: bool = False
    opened: bool = False


class Owner:
    """What a connection reports to (the client). Methods run on the connection's thread."""

    def session_opened(self, conn: Connection) -> None: ...
    def session_ended(self, conn: Connection, outcome: Outcome) -> None: ...
    def control(self, conn: Connection, output: Output) -> None: ...
    def subscriptions(self) -> list[Subscription]:
        return []


class Connection:
    def __init__(
        self,
        index: int,
        config: ClientConfig,
        dialect_factory: Callable[[int, list[Subscription]], Dialect],
        delivery: Delivery,
        stats: ConnectionStats,
        owner: Owner,
    ) -> None:
        self.index = index
        self.config = config
        self.stats = stats
        self._dialect_factory = dialect_factory
        self._delivery = delivery
        self._owner = owner
        self._go = threading.Event()
        self._stopping = False
        self._abort_reason: str | None = None
        self._ws: websocket.WebSocket | None = None
        self._lock = threading.Lock()  # guards the dialect between the reader and other threads
        self.dialect: Dialect | None = None
        self.sessions = 0
        # read by the supervisor
        self.opened_at: float | None = None  # monotonic
        self.last_rx = 0.0  # monotonic
        self.ping_sent_at: float | None = None
        self.next_ping_at = 0.0
        self.hello: dict[str, object] | None = None
        self._thread = threading.Thread(target=self._run, name=f"pumpsync-conn-{index}", daemon=True)

    # ------------------------------------------------------------------ control from other threads
    def start(self) -> None:
        self._thread.start()

    def go(self) -> None:
        """Start the next connection attempt (the supervisor decides when)."""
        self._go.set()

    def abort(self, reason: str) -> None:
        """End the current session at once (stale socket, fatal error, close)."""
        self._abort_reason = reason
        ws = self._ws
        if ws is not None and ws.sock is not None:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        """Close politely (1000) and end the thread; returns at once, see :meth:`join`."""
        self._stopping = True
        self._go.set()
        ws = self._ws
        if ws is not None and ws.connected:
            _send_close(ws, websocket.STATUS_NORMAL)
        self.abort("client_close")

    def join(self, timeout: float) -> bool:
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def send(self, text: str) -> bool:
        """Thread-safe send; False if there is no open socket."""
        ws = self._ws
        if ws is None or not ws.connected:
            return False
        try:
            ws.send(text)
        except (OSError, websocket.WebSocketException):
            return False
        return True

    def send_ping(self) -> bool:
        with self._lock:
            frame = self.dialect.ping() if self.dialect is not None else None
        if frame is None:
            return False
        self.ping_sent_at = time.monotonic()
        if self.send(frame):
            self.stats.pings_sent += 1
            return True
        return False

    def with_dialect(self, action: Callable[[Dialect], list[str]]) -> bool:
        """Run ``action`` on the live dialect and send the frames it returns."""
        with self._lock:
            if self.dialect is None:
                return False
            frames = action(self.dialect)
        return all(self.send(frame) for frame in frames)

    @property
    def is_open(self) -> bool:
        return self.stats.state == "open"

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
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
            self._ws = None
            self.opened_at = None
            if self._stopping:
                self.stats.set_state("closed")
                break
            self._owner.session_ended(self, outcome)
        self.stats.set_state("closed")

    def _session(self) -> Outcome:
        config = self.config
        with self._lock:
            self.dialect = dialect = self._dialect_factory(self.index, self._owner.subscriptions())
        handshake = dialect.handshake(config.url, config.api_key, config.auth)
        self._abort_reason = None
        self.hello = None
        self.stats.attempts += 1
        self.stats.set_state("connecting")
        log.debug("connection %d: connecting to %s", self.index, redact(handshake.url, config.api_key))
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True, sslopt=self._sslopt())
        self._ws = ws
        try:
            ws.connect(
                handshake.url,
                header=handshake.headers,
                timeout=config.connect_timeout,
                suppress_origin=True,
                **self._proxy_options(),
            )
        except websocket.WebSocketBadStatusException as exc:
            ws.shutdown()
            return self._http_refusal(exc.status_code)
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            ws.shutdown()
            return Outcome(self._abort_reason or "connect_failed", detail=redact(_describe(exc), config.api_key))
        if self._abort_reason is not None:  # close() came while we were connecting
            ws.shutdown()
            return Outcome(self._abort_reason)
        return self._serve(ws, dialect)

    def _serve(self, ws: websocket.WebSocket, dialect: Dialect) -> Outcome:
        self.sessions += 1
        now = time.monotonic()
        self.opened_at = self.last_rx = now
        self.ping_sent_at = None
        self.next_ping_at = now + self.config.ping_interval
        self.stats.connects += 1
        self.stats.set_state("open")
        log.info("connection %d: open", self.index)
        self._owner.session_opened(self)
        self.with_dialect(lambda d: d.on_open())
        try:
            return self._read(ws, dialect)
        finally:
            ws.shutdown()

    def _read(self, ws: websocket.WebSocket, dialect: Dialect) -> Outcome:
        sock = ws.sock
        assert sock is not None  # connected
        sock.settimeout(_READ_TICK)
        recv = sock.recv
        decoder = FrameDecoder(self.config.max_frame_size)
        stats = self.stats
        deliver = self._delivery.deliver
        lock = self._lock
        while True:
            if self._abort_reason is not None:
                return Outcome(self._abort_reason, opened=True)
            try:
                chunk = recv(_READ_SIZE)
            except TimeoutError:
                continue
            except (OSError, ValueError) as exc:
                return Outcome(self._abort_reason or "dropped", detail=_describe(exc), opened=True)
            if not chunk:
                return Outcome(self._abort_reason or "dropped", detail="connection closed without a close frame",
                               opened=True)  # fmt: skip
            wall = time.time()
            self.last_rx = time.monotonic()
            stats.bytes += len(chunk)
            stats.last_frame_at = wall
            received_at = int(wall * 1000)
            try:
                for opcode, payload in decoder.feed(chunk):
                    if opcode == OP_TEXT or opcode == OP_BINARY:
                        stats.frames += 1
                        if opcode == OP_BINARY:
                            stats.malformed["binary"] += 1
                        with lock:
                            outputs = dialect.receive(payload, received_at)
                        for out in outputs:
                            if type(out) is Event:
                                deliver(out)
                                stats.last_event_at = wall
                            else:
                                ended = self._control(out)
                                if ended is not None:
                                    return ended
                    elif opcode == OP_CLOSE:
                        _send_close(ws, close_code(payload) or websocket.STATUS_NORMAL)  # the closing handshake
                        return self._closed_by_server(dialect, payload)
                    elif opcode == OP_PING:
                        ws.pong(payload)
            except FrameTooLarge as exc:
                stats.malformed["oversized"] += 1
                log.warning("connection %d: %s; closing with 1009", self.index, exc)
                _send_close(ws, websocket.STATUS_MESSAGE_TOO_BIG)
                return Outcome("oversized", code=1009, opened=True)
            except ProtocolError as exc:
                stats.malformed["protocol"] += 1
                log.warning("connection %d: protocol error: %s; closing with 1002", self.index, exc)
                _send_close(ws, websocket.STATUS_PROTOCOL_ERROR)
                return Outcome("protocol", code=1002, opened=True)

    def _control(self, out: Output) -> Outcome | None:
        """Handle a non-event output on the reader thread; an Outcome ends the session."""
        if isinstance(out, Malformed):
            self.stats.malformed[out.reason] += 1
        elif isinstance(out, Reply):
            self.send(out.text)
        elif isinstance(out, Pong):
            sent = self.ping_sent_at
            self.stats.pongs += 1
            if sent is not None:
                rtt = time.monotonic() - sent
                self.stats.rtt.observe(rtt)
                self.stats.last_rtt = rtt
                self.ping_sent_at = None
        elif isinstance(out, Hello):
            self.hello = dict(out.info)
            self._owner.control(self, out)
        elif isinstance(out, Fatal):
            self._owner.control(self, out)
            return Outcome("refused", refusal=out.error, opened=True)
        elif isinstance(out, (StatusReport, Subscribed, Unsubscribed, Rejected, Notice)):
            self._owner.control(self, out)
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
        return Outcome("closed", code=code, detail=redact(detail, self.config.api_key), refusal=refusal,
                       rate_limited=policy.rate_limited, opened=True)  # fmt: skip

    def _http_refusal(self, status: int) -> Outcome:
        provider = self.config.provider
        refusal_cls = _HTTP_REFUSALS.get(status)
        refusal = None
        if refusal_cls is not None:
            refusal = refusal_cls(f"{provider} refused the WebSocket upgrade with HTTP {status}", provider=provider)
        return Outcome(f"http_{status}" if status in (401, 403, 429, 503) else "http_error", detail=f"HTTP {status}",
                       refusal=refusal, rate_limited=status == 429)  # fmt: skip

    def _sslopt(self) -> dict[str, object]:
        if self.config.ca_bundle:
            return {"ca_certs": self.config.ca_bundle}
        return {}

    def _proxy_options(self) -> dict[str, object]:
        proxy = self.config.proxy
        if not proxy:
            return {}
        from urllib.parse import urlsplit

        parts = urlsplit(proxy)
        options: dict[str, object] = {
            "http_proxy_host": parts.hostname,
            "http_proxy_port": parts.port,
            "proxy_type": parts.scheme if parts.scheme in _PROXY_SCHEMES else "http",
        }
        if parts.username:
            options["http_proxy_auth"] = (parts.username, parts.password or "")
        return options


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


def _send_close(ws: websocket.WebSocket, status: int) -> None:
    try:
        ws.send_close(status)
    except (OSError, websocket.WebSocketException):
        pass  # the socket is going away anyway
