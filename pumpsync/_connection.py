"""One connection slot: a thread that opens a socket when told and reads it until it ends.

Transport only. What frames mean is the dialect's business (``providers/``); when to ping,
when a socket is stale and when to reconnect is the supervisor's (``_supervisor.py``).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import websocket

from pumpsync._backoff import retry_after
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
from pumpsync._secrets import redact, safe_url
from pumpsync._stats import ConnectionStats
from pumpsync._threads import join_thread
from pumpsync.config import PROXY_PORTS, ClientConfig
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

# 64 KiB: a larger buffer crosses glibc's mmap threshold and costs an mmap/munmap pair per recv.
_READ_SIZE = 64 * 1024
# The reader wakes this often even when nothing arrives, so that close() never waits on a
# socket that a broken network left half-open.
_READ_TICK = 0.5
# A TLS context whose certificates failed to verify is rebuilt at most this often (a CA file fixed on
# disk is picked up without a restart, without reloading the CA store on every attempt).
_TLS_RELOAD = 60.0
# HTTP statuses on the upgrade that retrying cannot fix.
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
    retry_after: float | None = None  # the server's Retry-After, seconds


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
        self._tls: ssl.SSLContext | None = None
        self._tls_built = 0.0
        self._tls_suspect = False  # a certificate failed to verify: maybe the CA file has changed since
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
        return join_thread(self._thread, timeout)

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
        url = config.url_of(self.index)
        handshake = dialect.handshake(url, config.api_key, config.auth)
        self._abort_reason = None
        self.hello = None
        self.stats.attempts += 1
        self.stats.set_state("connecting")
        log.debug("connection %d: connecting to %s", self.index, safe_url(handshake.url))
        try:
            sslopt = self._sslopt(handshake.url)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return Outcome("connect_failed", detail=f"cannot load the CA certificates: {_describe(exc)}")
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True, sslopt=sslopt)
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
            return self._http_refusal(exc.status_code, exc.resp_headers or {})
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            ws.shutdown()
            if isinstance(exc, ssl.SSLCertVerificationError):
                self._tls_suspect = True  # reload the CA certificates (at most every _TLS_RELOAD s)
            detail = describe_connect_error(exc, url, config.connect_timeout, bool(config.proxy))
            return Outcome(self._abort_reason or "connect_failed", detail=redact(detail, config.api_key))
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
        lock = self._lock
        events: list[Event] = []
        while True:
            if self._abort_reason is not None:
                return Outcome(self._abort_reason, opened=True)
            try:
                chunk = recv(_READ_SIZE)
            except TimeoutError:
                continue
            except (OSError, ValueError) as exc:
                detail = redact(_describe(exc), self.config.api_key)
                return Outcome(self._abort_reason or "dropped", detail=detail, opened=True)
            if not chunk:
                return Outcome(
                    self._abort_reason or "dropped", detail="connection closed without a close frame", opened=True
                )
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
                                events.append(out)
                            else:
                                if events:  # what came before a control message goes first
                                    self._hand_on(events, wall)
                                ended = self._control(out)
                                if ended is not None:
                                    return ended
                    elif opcode == OP_CLOSE:
                        _send_close(ws, close_code(payload) or websocket.STATUS_NORMAL)  # the closing handshake
                        return self._closed_by_server(dialect, payload)
                    elif opcode == OP_PING:
                        self._pong(ws, payload)
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
            finally:
                # A read's events go on together, under one acquisition of the delivery lock (in
                # bulk a 64 KiB read carries about 190 of them). This runs before any way out of
                # the block returns its Outcome (whose error, if any, is queued after them); only a
                # control message, which may queue something at once, hands them on first.
                if events:
                    self._hand_on(events, wall)

    def _hand_on(self, events: list[Event], wall: float) -> None:
        self.stats.last_event_at = wall
        self._delivery.deliver_all(events)
        events.clear()

    def _pong(self, ws: websocket.WebSocket, payload: bytes) -> None:
        # A peer that pings but stops reading fills our send buffer; the send then times out.
        # That is the peer's problem (the supervisor will see the socket go stale), not a crash.
        try:
            ws.pong(payload)
        except (OSError, websocket.WebSocketException):
            pass

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
        refusal_cls = _HTTP_REFUSALS.get(status)
        refusal = None
        if refusal_cls is not None:
            refusal = refusal_cls(f"{provider} refused the WebSocket upgrade with HTTP {status}", provider=provider)
        try:
            phrase = f" {HTTPStatus(status).phrase}"
        except ValueError:
            phrase = ""
        return Outcome(
            f"http_{status}" if status in (401, 403, 429, 503) else "http_error",
            detail=f"the WebSocket upgrade was answered with HTTP {status}{phrase}",
            refusal=refusal,
            rate_limited=status == 429,
            retry_after=retry_after(headers.get("retry-after") or headers.get("Retry-After"), 0.0) or None,
        )

    def _sslopt(self, url: str) -> dict[str, object]:
        """TLS options: one verifying context per connection slot, built once.

        websocket-client would build a context and load the whole CA store on every attempt
        (~25 ms of CPU); during an outage with short backoff that dominates the client's CPU."""
        if urlsplit(url).scheme != "wss":
            return {}
        now = time.monotonic()
        if self._tls is None or (self._tls_suspect and now - self._tls_built >= _TLS_RELOAD):
            # PROTOCOL_TLS_CLIENT: certificate and host name verification on, whatever the defaults elsewhere.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # ca_bundle, else websocket-client's own environment variable, else the system store.
            bundle = self.config.ca_bundle or os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
            if bundle and os.path.isdir(bundle):
                context.load_verify_locations(capath=bundle)
            elif bundle and (self.config.ca_bundle or os.path.isfile(bundle)):
                context.load_verify_locations(cafile=bundle)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            keylog = os.environ.get("SSLKEYLOGFILE")  # parity with websocket-client: a debugging aid
            if keylog:
                context.keylog_filename = keylog
            self._tls, self._tls_built, self._tls_suspect = context, now, False
        return {"context": self._tls}

    def _proxy_options(self) -> dict[str, object]:
        proxy = self.config.proxy
        if not proxy:
            return {}
        parts = urlsplit(proxy)  # validated by make_config
        scheme = parts.scheme
        options: dict[str, object] = {
            "http_proxy_host": parts.hostname,
            # websocket-client refuses a proxy without a port; requests assumes the scheme's default.
            "http_proxy_port": parts.port or PROXY_PORTS.get(scheme, 80),
            "proxy_type": scheme if scheme in PROXY_PORTS else "http",
            # An explicit proxy is used for every host, as requests does for gap recovery; otherwise
            # websocket-client would let $no_proxy silently send the stream around it.
            "http_no_proxy": [_NO_HOST],
            "http_proxy_timeout": self.config.connect_timeout,  # SOCKS; python-socks would wait 60 s
        }
        if parts.username:
            options["http_proxy_auth"] = (unquote(parts.username), unquote(parts.password or ""))
        return options


# A no_proxy entry that matches no host name (websocket-client reads $no_proxy when given none).
_NO_HOST = "no-proxy-exemptions.invalid."


def describe_connect_error(exc: BaseException, url: str, timeout: float, proxied: bool = False) -> str:
    """One clear line for a failed connection attempt: what failed, where, and what might help."""
    where = urlsplit(url)
    host = where.hostname or "?"
    port = where.port or (443 if where.scheme == "wss" else 80)
    target = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or str(exc)
        return f"TLS certificate verification failed for {target}: {why} (a private CA? pass ca_bundle)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {target} failed: {exc.reason or exc}"
    if isinstance(exc, websocket.WebSocketAddressException):
        return f"DNS lookup of {host!r} failed: {_inner(exc)}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup of {host!r} failed: {exc.strerror or exc}"
    if isinstance(exc, websocket.WebSocketProxyException):
        return f"the proxy failed: {exc}"
    if isinstance(exc, websocket.WebSocketTimeoutException):
        return f"{target} accepted the connection but did not answer the WebSocket upgrade within {timeout:g} s"
    if isinstance(exc, TimeoutError):
        return f"connecting to {target} timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {'the proxy' if proxied else target}"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by {target} during the upgrade"
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return f"{target} closed the connection during the WebSocket upgrade"
    if isinstance(exc, OSError) and exc.strerror:
        return f"connecting to {target} failed: {exc.strerror}"
    return f"connecting to {target} failed: {_describe(exc)}"


def _inner(exc: BaseException) -> str:
    args = [a for a in exc.args if a]
    inner = args[0] if args else exc
    return getattr(inner, "strerror", None) or str(inner) or type(inner).__name__


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


def _send_close(ws: websocket.WebSocket, status: int) -> None:
    try:
        ws.send_close(status)
    except (OSError, websocket.WebSocketException):
        pass  # the socket is going away anyway
