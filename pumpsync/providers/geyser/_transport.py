"""The gRPC transport: one bidirectional ``/geyser.Geyser/Subscribe`` call per session (grpcio).

Raw bytes both ways (the codec is ``_proto``); the request stream is fed from a queue (``send``);
a reader thread turns the blocking response iterator into ``read()``'s half-second waits. When
the call ends, its status reaches the dialect as one last frame (``status_frame``): the dialect
decides what it means (a refused key, a rate limit, a replay window passed). Error texts are
redacted of the key before anything else sees them; grpcio is imported without its metadata
tracers (``_grpc``), and its Python loggers are scrubbed like every other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pumpsync._secrets import redact, scrub
from pumpsync.providers.geyser._grpc import import_grpc
from pumpsync.providers.geyser._history import book_for
from pumpsync.providers.geyser._status import FORGED, OK, oversized, replay_refused, status_frame
from pumpsync.providers.spec import OP_BINARY, ConnectFailed, TransportClosed

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

METHOD = "/geyser.Geyser/Subscribe"
DEFAULT_RECEIVE_LIMIT = 64 * 1024 * 1024  # grpcio's own 4 MiB is less than real blocks of transactions
_READ_TICK = 0.5
_BATCH = 256  # messages handed over per read at most
_QUEUED = 4096  # messages the reader thread may be ahead of the session loop (then it waits)
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_END = object()
_NOTHING: tuple[tuple[int, bytes], ...] = ()


def target_of(url: str) -> tuple[str, bool]:
    """``(host:port, tls)`` of a geyser URL: https/grpcs use TLS (port 443 by default); http/grpc
    only for a local test server (a token must not cross a network in clear text)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme in ("https", "grpcs")
    if not tls and host not in _LOCAL_HOSTS:
        raise ValueError(f"{parts.scheme}:// without TLS is only for a local server (use https://)")
    port = parts.port or (443 if tls else 80)
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), tls


class GrpcTransport:
    """The ``Transport`` of ``geyser`` (see ``pumpsync.providers.spec.Transport``)."""

    def __init__(self, config: ClientConfig, index: int) -> None:
        self.config = config
        self.index = index
        self._grpc = import_grpc()
        self._key = config.api_key
        self.receive_limit = config.max_frame_size or DEFAULT_RECEIVE_LIMIT  # the spec's default: 64 MiB
        self._book = book_for(config)
        self._lock = threading.Lock()  # guards the session's objects between the session and other threads
        self._channel: Any = None
        self._call: Any = None
        self._requests: queue.SimpleQueue[bytes | object] = queue.SimpleQueue()
        self._inbox: queue.Queue[bytes | tuple[int, str]] = queue.Queue(_QUEUED)
        self._reader: threading.Thread | None = None
        self._open = False
        self._ended: str | None = None  # the call's end, once the dialect has been told

    # -- Transport
    def open(self, url: str, headers: Mapping[str, str]) -> None:
        grpc = self._grpc
        try:
            target, tls = target_of(url)
        except ValueError as exc:
            raise ConnectFailed(str(exc)) from None
        options = [
            ("grpc.max_receive_message_length", self.receive_limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.enable_http_proxy", 0),  # $https_proxy must not send the stream (and token) around
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ]
        if tls:
            roots = None
            if self.config.ca_bundle:
                try:
                    with open(self.config.ca_bundle, "rb") as file:
                        roots = file.read()
                except OSError as exc:
                    raise ConnectFailed(f"cannot read the CA certificates: {exc.strerror}") from None
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options)
        else:
            channel = grpc.insecure_channel(target, options)
        with self._lock:
            self._channel = channel
        try:
            grpc.channel_ready_future(channel).result(timeout=self.config.connect_timeout)
        except grpc.FutureTimeoutError:
            channel.close()
            raise ConnectFailed(
                f"could not connect to {target} within {self.config.connect_timeout:g} s (TLS: {tls})"
            ) from None
        except Exception as exc:  # channel closed by abort() meanwhile
            channel.close()
            raise ConnectFailed(redact(f"connecting to {target} failed: {type(exc).__name__}", self._key)) from None
        metadata = [(name.lower(), value) for name, value in headers.items()]
        self._requests = queue.SimpleQueue()
        self._inbox = queue.Queue(_QUEUED)
        self._ended = None
        stub = channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)
        call = stub(self._request_stream(self._requests), metadata=metadata)
        reader = threading.Thread(
            target=self._read_responses, args=(call, self._inbox), name=f"pumpsync-geyser-rx-{self.index}", daemon=True
        )
        with self._lock:
            self._call, self._reader, self._open = call, reader, True
        reader.start()

    @staticmethod
    def _request_stream(requests: queue.SimpleQueue[bytes | object]) -> Iterator[bytes]:
        while True:
            item = requests.get()
            if item is _END or not isinstance(item, bytes):
                return
            yield item

    def _read_responses(self, call: Any, inbox: queue.Queue[bytes | tuple[int, str]]) -> None:
        """The reader thread: every message, then the call's status; it never dies silently (any
        failure becomes the status the dialect sees)."""
        grpc = self._grpc
        end: tuple[int, str]
        try:
            for message in call:
                inbox.put(message)
            end = (OK, "the server ended the stream")
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            details = exc.details() if callable(getattr(exc, "details", None)) else None
            value = code.value[0] if code is not None else 2  # UNKNOWN
            end = (value, scrub(redact(str(details or code or "no details"), self._key))[:300])
        except Exception as exc:
            end = (2, redact(f"the gRPC reader failed: {type(exc).__name__}", self._key))
        if replay_refused(*end)[0] or oversized(*end):
            self._book.refused(replay_refused(*end)[1])  # the gap's history must come from RPC (or is lost)
        inbox.put(end)

    def read(self) -> tuple[int, Iterable[tuple[int, bytes]]]:
        if self._ended is not None:
            raise TransportClosed(self._ended)
        inbox = self._inbox
        try:
            item = inbox.get(timeout=_READ_TICK)
        except queue.Empty:
            return 0, _NOTHING
        frames: list[tuple[int, bytes]] = []
        size = 0
        while True:
            if isinstance(item, tuple):
                code, details = item
                self._ended = f"gRPC status {code}: {details}"
                frames.append((OP_BINARY, status_frame(code, details)))
                return size + 1, frames
            size += len(item)
            frames.append((OP_BINARY, FORGED if item[:1] == b"\x00" else item))  # never taken for a status
            if len(frames) >= _BATCH:
                return size, frames
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                return size, frames

    def send(self, data: str | bytes) -> bool:
        """One request message (a str is encoded as UTF-8; the dialect sends bytes)."""
        if not self._open:
            return False
        self._requests.put(data.encode() if isinstance(data, str) else data)
        return True

    send_text = send  # the name the connection calls until the transport seam's rename (SEAM.md 2)

    def send_ping(self, payload: bytes = b"") -> bool:
        return False  # the heartbeat is the dialect's ping request

    def send_pong(self, payload: bytes) -> None:
        return None

    def close(self, code: int) -> None:
        """Half-close the request stream (the server sees the client is done)."""
        if self._open:
            self._requests.put(_END)

    def abort(self) -> None:
        with self._lock:
            call, channel = self._call, self._channel
        if call is not None:
            call.cancel()
        elif channel is not None:
            channel.close()  # a connect in progress returns at once

    def shutdown(self) -> None:
        with self._lock:
            call, channel, reader = self._call, self._channel, self._reader
            self._call = self._channel = self._reader = None
            self._open = False
        self._requests.put(_END)
        if call is not None:
            call.cancel()
        if reader is not None:
            while reader.is_alive():  # it may wait for room in the inbox: make it
                try:
                    self._inbox.get_nowait()
                except queue.Empty:
                    reader.join(0.05)
        if channel is not None:
            channel.close()

    def __repr__(self) -> str:
        return f"<GrpcTransport connection={self.index} open={self._open}>"


__all__ = ["DEFAULT_RECEIVE_LIMIT", "METHOD", "GrpcTransport", "target_of"]
