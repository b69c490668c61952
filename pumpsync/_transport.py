"""The WebSocket transport: the socket, TLS, proxy translation and the wording of connect errors.

The connection's session loop (``_connection.py``) reads frames from a transport and never
touches a socket; a provider with another source supplies its own transport
(``ProviderSpec.transport``, the ``Transport`` protocol in ``providers/spec.py``).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

import websocket

from pumpsync._framing import FrameDecoder
from pumpsync.config import PROXY_PORTS, ClientConfig
from pumpsync.providers.spec import ConnectFailed, TransportClosed, UpgradeRefused

# 64 KiB: a larger buffer crosses glibc's mmap threshold and costs an mmap/munmap pair per recv.
_READ_SIZE = 64 * 1024
# The reader wakes this often even when nothing arrives, so that close() never waits on a
# socket that a broken network left half-open.
_READ_TICK = 0.5
# A TLS context whose certificates failed to verify is rebuilt at most this often (a CA file fixed on
# disk is picked up without a restart, without reloading the CA store on every attempt).
_TLS_RELOAD = 60.0
# A no_proxy entry that matches no host name (websocket-client reads $no_proxy when given none).
_NO_HOST = "no-proxy-exemptions.invalid."
_NOTHING: tuple[tuple[int, bytes], ...] = ()


class WebSocketTransport:
    """websocket-client for the upgrade (TLS, proxies), then our own frame decoder on the raw socket."""

    def __init__(self, config: ClientConfig, index: int) -> None:
        self.config = config
        self.index = index
        self._ws: websocket.WebSocket | None = None
        self._decoder = FrameDecoder(config.max_frame_size)
        self._tls: ssl.SSLContext | None = None
        self._tls_built = 0.0
        self._tls_suspect = False  # a certificate failed to verify: maybe the CA file has changed since

    def open(self, url: str, headers: Mapping[str, str]) -> None:
        config = self.config
        try:
            sslopt = self._sslopt(url)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConnectFailed(f"cannot load the CA certificates: {describe(exc)}") from None
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True, sslopt=sslopt)
        self._ws = ws
        try:
            ws.connect(
                url,
                header=dict(headers),
                timeout=config.connect_timeout,
                suppress_origin=True,
                **self._proxy_options(),
            )
        except websocket.WebSocketBadStatusException as exc:
            ws.shutdown()
            raise UpgradeRefused(exc.status_code, exc.resp_headers or {}) from None
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            ws.shutdown()
            verify = isinstance(exc, ssl.SSLCertVerificationError)
            if verify:
                self._tls_suspect = True  # reload the CA certificates (at most every _TLS_RELOAD s)
            detail = describe_connect_error(exc, url, config.connect_timeout, bool(config.proxy))
            raise ConnectFailed(detail, tls_verify=verify) from None
        sock = ws.sock
        assert sock is not None  # connected
        sock.settimeout(_READ_TICK)
        self._recv = sock.recv
        self._decoder = FrameDecoder(config.max_frame_size)

    def read(self) -> tuple[int, Iterable[tuple[int, bytes]]]:
        try:
            chunk = self._recv(_READ_SIZE)
        except TimeoutError:
            return 0, _NOTHING
        except (OSError, ValueError) as exc:
            raise TransportClosed(describe(exc)) from None
        if not chunk:
            raise TransportClosed("connection closed without a close frame")
        return len(chunk), self._decoder.feed(chunk)

    def send(self, data: str | bytes) -> bool:
        """``str`` as a text frame, ``bytes`` as a binary frame (SEAM: ``Transport.send``)."""
        ws = self._ws
        if ws is None or not ws.connected:
            return False
        try:
            if isinstance(data, bytes):
                ws.send_binary(data)
            else:
                ws.send(data)
        except (OSError, websocket.WebSocketException):
            return False
        return True

    def send_ping(self, payload: bytes = b"") -> bool:
        ws = self._ws
        if ws is None or not ws.connected:
            return False
        try:
            ws.ping(payload)
        except (OSError, websocket.WebSocketException):
            return False
        return True

    def send_pong(self, payload: bytes) -> None:
        # A peer that pings but stops reading fills our send buffer; the send then times out.
        # That is the peer's problem (the supervisor will see the socket go stale), not a crash.
        ws = self._ws
        if ws is None:
            return
        try:
            ws.pong(payload)
        except (OSError, websocket.WebSocketException):
            pass

    def close(self, code: int) -> None:
        ws = self._ws
        if ws is None or not ws.connected:
            return
        try:
            ws.send_close(code)
        except (OSError, websocket.WebSocketException):
            pass  # the socket is going away anyway

    def abort(self) -> None:
        ws = self._ws
        if ws is not None and ws.sock is not None:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def shutdown(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.shutdown()

    # ------------------------------------------------------------------ options
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
    return f"connecting to {target} failed: {describe(exc)}"


def _inner(exc: BaseException) -> str:
    args = [a for a in exc.args if a]
    inner = args[0] if args else exc
    return getattr(inner, "strerror", None) or str(inner) or type(inner).__name__


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


__all__ = ["WebSocketTransport", "describe", "describe_connect_error"]
