"""What a provider module declares: everything the generic core needs to know about a source.

A provider is one module in ``pumpsync/providers/`` that exports ``SPEC = ProviderSpec(...)``
and one line in the registry (``pumpsync/providers/__init__.py``). Generic modules read the
spec; they never test a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import threading

    from pumpsync.config import ClientConfig
    from pumpsync.events import Event
    from pumpsync.providers.base import Dialect

# How a connection proves it is alive:
# "app"     the dialect's own ping message (``Dialect.ping()``), answered by a ``Pong`` output;
# "ws_ping" WebSocket ping frames, answered by pong frames (JSON-RPC nodes have no application ping);
# "server"  the server pings us (the dialect answers with ``Reply``); we only watch for staleness;
# "none"    nothing to send; staleness is still watched where ``stale`` is true.
Heartbeat = Literal["app", "ws_ping", "server", "none"]
# What a dialect hands the transport to send (SEAM.md 1): text frames, or binary (gRPC) messages.
Outgoing = str | bytes
AuthForm = Literal["query", "header", "none"]


@dataclass(frozen=True, order=True)
class Position:
    """Where a stream was: the slot and, where the history source wants it, the signature
    (Solana's ``getSignaturesForAddress(until=...)``) of the newest event seen."""

    slot: int
    signature: str | None = field(default=None, compare=False)


class HistorySource(Protocol):
    """Gap recovery for one provider: what can be fetched again, and how.

    ``fetch`` yields pages of events from ``since`` on (inclusive: events at ``since.slot`` that
    were delivered already are recognised and skipped), **in slot order from page to page**
    (within a page any order: the recovery sorts each page), and lazily: the recovery asks for
    the next page only when the consumer has made room for the last one, so a source must not
    read ahead without bound (Solana: list the signatures back to ``since.signature`` first, up
    to the source's ceiling, then fetch the transactions oldest first, a page at a time). It
    raises ``HistoryError`` when the history cannot be had (after its own bounded retries;
    whatever it yielded before is kept); ``stop`` set means the client is closing: return
    promptly. ``channels`` maps each channel to fetch to its filters: one channel per call for a
    per-channel source, every recoverable subscribed channel for a stream-wide one.
    """

    # True: one position serves every channel (one subscription carries them all; Solana).
    # False: each channel has a position of its own (Anaxer's per-channel REST lists).
    stream_wide: bool

    def recoverable(self, channel: str) -> bool: ...

    def fetch(
        self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: threading.Event
    ) -> Iterator[list[Event]]: ...

    def close(self) -> None: ...

    # Optional, looked up with getattr:
    # ``refetch(key, slot, channels, stop) -> list[Event]``: one item again (answers the dialect's
    # ``Refetch`` output); ``stats() -> Mapping[str, int]``: the source's own counts (losses by
    # reason, rate limits), shown in ``Client.stats()["history"]`` and the metrics; ``lost() -> int``:
    # the items it has counted lost so far (each gap's report takes its share).
    # Everything a history server answers is typed and bounded before use (answers read at most
    # ``_history_http.MAX_ANSWER_BYTES``); one unreadable item is counted and skipped, never the gap.


class HistoryError(Exception):
    """History could not be fetched (after retries); the message is safe to log (no key)."""


# ---------------------------------------------------------------- the transport seam
# Frame opcodes a transport yields (RFC 6455's numbers; a non-WebSocket transport yields OP_TEXT).
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class ConnectFailed(Exception):
    """Opening the transport failed; ``str()`` is one clear line, safe to log (no key, no URL path)."""

    def __init__(self, detail: str, *, tls_verify: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.tls_verify = tls_verify  # a certificate failed to verify: the CA file may have changed


class UpgradeRefused(Exception):
    """The server answered the opening handshake with an HTTP error status."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = dict(headers)


class TransportClosed(Exception):
    """The peer went away without a close frame; ``str()`` says how (safe to log)."""


class Transport(Protocol):
    """A connection slot's pipe to the source: opened once per session by the connection thread
    (``open``/``read``/``send_*``/``close``/``shutdown``); ``abort`` and the sends may come from
    any thread. The WebSocket transport (``pumpsync/_transport.py``) is the default; a provider
    with another source (a Redis stream, a file) supplies its own via ``ProviderSpec.transport``.
    A transport class with metrics of its own may add a class method ``metrics_collector(transports)``
    (see ``pumpsync.metrics.extra_collectors``).
    """

    def open(self, url: str, headers: Mapping[str, str]) -> None:
        """Connect (with the config's TLS, proxy and timeout). Raises ``UpgradeRefused`` or ``ConnectFailed``."""

    def read(self) -> tuple[int, Iterable[tuple[int, bytes]]]:
        """Wait (briefly: at most about half a second, so that close() is prompt) for input:
        ``(bytes received, frames)``, each frame ``(opcode, payload)``; ``(0, ())`` means nothing
        yet. Raises ``TransportClosed`` at the end, and the framing's ``FrameTooLarge`` or
        ``ProtocolError`` (``pumpsync._framing``) for a broken stream."""

    def send_text(self, text: str) -> bool:
        """Thread-safe; False if the transport is not open."""

    def send_ping(self, payload: bytes = b"") -> bool:
        """A WebSocket ping frame (heartbeat ``"ws_ping"``), answered by an ``OP_PONG`` frame; False where none."""

    def send_pong(self, payload: bytes) -> None:
        """Answer the peer's ping frame (never raises)."""

    def close(self, code: int) -> None:
        """Start the polite closing handshake (send only; never raises)."""

    def abort(self) -> None:
        """From any thread: make a blocked ``open``/``read`` return at once."""

    def shutdown(self) -> None:
        """The session is over: release the socket (the transport may be opened again)."""


# ``(config, connection index) -> Transport``: one per connection slot, built when the client is.
TransportFactory = Callable[["ClientConfig", int], Transport]


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the core needs to know about one provider."""

    name: str
    summary: str  # one line for ``--help`` and the README
    dialect: type[Dialect]
    default_url: str
    url_schemes: tuple[str, ...] = ("ws", "wss")
    channels: tuple[str, ...] = ()  # () = no channels: every event of the stream arrives
    default_channels: tuple[str, ...] = ()
    # Per channel, the filter keys the provider (or pumpsync, locally) understands.
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    auth_forms: tuple[AuthForm, ...] = ("query", "header")
    default_auth: AuthForm = "query"
    key_required: bool = True
    heartbeat: Heartbeat = "app"
    # Alive means data. False: any frame proves the socket alive (pongs too). True: the dialect
    # subscribes to a clock on the same socket and emits Tick outputs; a connection whose clock
    # ticks on while no data frame arrives for stale_timeout has a dead subscription (reconnected,
    # counted as disconnect reason "no_data"). Ticks and pongs never count as data.
    data_clock: bool = False
    max_frame_size: int = 1024 * 1024
    # None: as many as the user asks for. With 1, sessions never overlap: a connection's one thread
    # shuts its socket down before the supervisor schedules the next attempt.
    max_connections: int | None = None
    max_connections_reason: str = ""
    # True: ``max_connections`` holds per host for the whole process (the operator counts sockets per
    # client IP): several sources of this provider on one host are refused at configuration.
    one_client_per_host: bool = False
    # Builds the history source for gap recovery (None: the provider has no history).
    history: Callable[[ClientConfig], HistorySource] | None = None
    # Options only this provider takes (e.g. ``commitment``), with their defaults. Each is a
    # ClientConfig field defaulting to None; setting one for a provider that does not list it is a
    # ConfigurationError, and None becomes the default given here.
    options: Mapping[str, Any] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()  # e.g. {"status"}: ``Client.status()`` works
    # Provider-specific validation after the generic checks; raise ConfigurationError naming the option.
    check: Callable[[ClientConfig], None] | None = None
    # None: WebSocket (pumpsync/_transport.py). Else builds each connection slot's transport (Redis, a file...).
    transport: TransportFactory | None = None
    # The channels ``pumpsync demo`` subscribes to (None: ``default_channels``).
    demo_channels: tuple[str, ...] | None = None
    # The reasons of the dialect's ``Dropped`` outputs (frames left out on purpose), exported at 0
    # in ``pumpsync_filtered_frames_total`` from the first scrape.
    filter_reasons: tuple[str, ...] = ()
    # The reasons of the dialect's own ``Malformed`` outputs beyond ``MALFORMED_REASONS``, exported
    # at 0 in ``pumpsync_malformed_frames_total`` from the first scrape.
    malformed_reasons: tuple[str, ...] = ()
    # Why a user may see no trades (``pumpsync top`` shows it when launches come and trades do not).
    trades_hint: str = ""
    # Recognizes this provider's first frame (its greeting), so that a client pointed at another
    # provider's endpoint can say so (``pumpsync._endpoint``); None: no greeting to tell it by.
    greeting: Callable[[Mapping[str, Any]], bool] | None = None
    # Builds a prometheus collector of metrics the provider keeps process-wide (solana: layout drift);
    # registered once per registry whatever the number of members using the provider.
    metrics: Callable[[], Any] | None = None
    # Which data frames the dialect takes (SEAM.md 3): a gRPC source's messages are binary.
    frames: Literal["text", "binary", "any"] = "text"

    def __post_init__(self) -> None:
        unknown = [ch for ch in (*self.default_channels, *(self.demo_channels or ())) if ch not in self.channels]
        if unknown or self.default_auth not in self.auth_forms:
            raise ValueError(f"inconsistent ProviderSpec {self.name!r}")


__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "AuthForm",
    "ConnectFailed",
    "Heartbeat",
    "HistoryError",
    "HistorySource",
    "Outgoing",
    "Position",
    "ProviderSpec",
    "Transport",
    "TransportClosed",
    "TransportFactory",
    "UpgradeRefused",
]
