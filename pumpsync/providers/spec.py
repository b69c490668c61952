"""What a provider module declares: everything the generic core needs to know about a source.

A provider is one module in ``pumpsync/providers/`` that exports ``SPEC = ProviderSpec(...)``
and one line in the registry (``pumpsync/providers/__init__.py``). Generic modules read the
spec; they never test a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from pumpsync._secrets import ApiKey, redact, remember_url, safe_url
from pumpsync.errors import ConfigurationError
from pumpsync.options import (
    RENAMED,
    History,
    Limits,
    Network,
    ProviderOptions,
    Retries,
    Timeouts,
    option,
)
from pumpsync.providers._frames import Outgoing
from pumpsync.providers.base import Subscription

if TYPE_CHECKING:
    import threading

    from pumpsync.events import Event
    from pumpsync.providers.base import Dialect, Output, Subscription

# How a connection proves it is alive:
# "app"     the dialect's own ping message (``Dialect.ping()``), answered by a ``Pong`` output;
# "ws_ping" WebSocket ping frames, answered by pong frames (JSON-RPC nodes have no application ping);
# "server"  the server pings us (the dialect answers with ``Reply``); we only watch for staleness;
# "none"    nothing to send; staleness is still watched where ``stale`` is true.
Heartbeat = Literal["app", "ws_ping", "server", "none"]
AuthForm = Literal["query", "header", "none"]
# ``Outgoing = str | bytes``: what a dialect sends (``pumpsync/providers/_frames.py``, re-exported here).
# Which data frames a dialect reads: a frame of another kind is counted malformed (``binary`` /
# ``text``) and still handed to the dialect, which decides (JSON in a binary frame reads fine).
FrameKind = Literal["text", "binary", "any"]


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
    # the items it has counted lost so far (each gap's report takes its share); ``head(stop) ->
    # Position | None``: where the chain is now, asked once when the stream first goes live (the
    # start of a gap before any event; without it such a gap is reported lost, ``_baseline.py``).
    # Everything a history server answers is typed and bounded before use (answers read at most
    # ``_history_http.MAX_ANSWER_BYTES``); one unreadable item is counted and skipped, never the gap.


class HistoryError(Exception):
    """History could not be fetched (after retries); the message is safe to log (no key)."""


# ---------------------------------------------------------------- the transport seam
# Frame opcodes a transport yields (RFC 6455's numbers). A transport whose protocol has messages of
# its own (gRPC) yields each as ``(OP_BINARY, payload)``; a line-based one may yield OP_TEXT.
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
    (``open``/``read``/``send*``/``close``/``shutdown``); ``abort`` and the sends may come from
    any thread. ``open``'s headers are the handshake's (for gRPC: the call's metadata). The
    WebSocket transport (``pumpsync/_transport.py``) is the default; a provider with another
    protocol (gRPC, Redis, a file) supplies its own via ``ProviderSpec.transport`` (a source of
    events, not frames, is an :class:`EventFeed` instead).
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

    def send(self, data: Outgoing) -> bool:
        """Thread-safe; False if the transport is not open. WebSocket: ``str`` as a text frame,
        ``bytes`` as a binary frame; another protocol sends ``bytes`` as one of its messages."""

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


# ---------------------------------------------------------------- the event-feed seam
class EventFeed(Protocol):
    """A source that hands over events, not frames (a recording, a Redis stream): one per
    connection slot, built by ``ProviderSpec.feed`` when the client is and kept across its
    sessions. The connection thread runs a feed session (``pumpsync/_feed_session.py``) instead of
    transport + dialect: ``open``, then ``read`` until it raises or an output ends the session,
    then ``shutdown``. Heartbeats and staleness come from the spec as for every provider: every
    ``read`` that returns proves the feed alive.

    Optional, looked up with getattr: ``bind_queue(queue)`` (the client's queue, whose ``qsize()``
    a feed that can outrun any consumer waits on), ``received_bytes`` (a running total, counted as
    the connection's bytes), a class method ``metrics_collector(feeds)`` (as for transports).
    """

    # True: ``consumed`` commits what the consumer is done with (redis positions and acks); a client
    # of several sources cannot tell which source an event came from, so such a feed is refused there.
    acknowledges: ClassVar[bool]

    def open(self, subscriptions: list[Subscription]) -> None:
        """Start a session. Raises ``ConnectFailed`` (retried with backoff) or a ``PumpsyncError``
        subclass that retrying cannot fix (a refused password: the client fails with it)."""

    def read(self) -> list[Output]:
        """Wait at most about half a second (so that close() is prompt): the events and control
        outputs (``Fatal``, ``Malformed``, ``Notice``, ``Hello``...) since the last read, in order;
        ``[]`` means nothing yet. Raises ``TransportClosed`` when the feed ends or drops."""

    def consumed(self, event: Event) -> None:
        """On the consumer's thread: it is done with ``event``, which ``get()``/iteration handed
        over (it asked for the next event, or closed the client). Never raises."""

    def abort(self) -> None:
        """From any thread: make a blocked ``open``/``read`` return now (``read`` then raises)."""

    def shutdown(self) -> None:
        """The session is over (the feed may be opened again); never raises."""


# ``(config, connection index) -> EventFeed``: one per connection slot, built when the client is.
FeedFactory = Callable[["ClientConfig", int], EventFeed]


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
    frames: FrameKind = "text"  # the data frames the dialect reads (see FrameKind)
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
    # The options only this provider takes (e.g. Solana's ``commitment``): a frozen ProviderOptions
    # dataclass of ``pumpsync.options.option`` fields, declared in the provider's module; the user
    # passes an instance as ``options=``, the CLI and the daemon's file get a flag / key per field.
    # (A mapping of name -> default is the older form, made into such a class.)
    options: type[ProviderOptions] | Mapping[str, Any] = ProviderOptions
    capabilities: frozenset[str] = frozenset()  # e.g. {"status"}: ``Client.status()`` works
    # Provider-specific validation after the generic checks; raise ConfigurationError naming the option.
    check: Callable[[ClientConfig], None] | None = None
    # None: WebSocket (pumpsync/_transport.py). Else builds each connection slot's transport (a protocol of frames).
    transport: TransportFactory | None = None
    # A source of events, not frames (a recording, a Redis stream): builds each connection slot's
    # EventFeed, read by a feed session instead of transport + dialect (``transport`` is then unused).
    feed: FeedFactory | None = None
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

    def __post_init__(self) -> None:
        unknown = [ch for ch in (*self.default_channels, *(self.demo_channels or ())) if ch not in self.channels]
        if unknown or self.default_auth not in self.auth_forms:
            raise ValueError(f"inconsistent ProviderSpec {self.name!r}")
        if isinstance(self.options, Mapping):  # the older form: name -> default
            made = make_dataclass(
                f"{self.name.capitalize()}Options",
                [(name, Any, option(default, name.replace("_", " "))) for name, default in self.options.items()],
                bases=(ProviderOptions,),
                frozen=True,
            )
            object.__setattr__(self, "options", made)

    @property
    def options_class(self) -> type[ProviderOptions]:
        """The class of this provider's own options (``ProviderOptions`` itself: none)."""
        return cast("type[ProviderOptions]", self.options)


# The registry (filled by ``pumpsync.providers``): here, so that a config finds its provider's spec
# without importing the providers package (which imports this module).
REGISTRY: dict[str, ProviderSpec] = {}

T = TypeVar("T")


class _Flat(Generic[T]):
    """A read-only flat name of a grouped option (``config.stale_timeout`` is ``config.timeouts.stale``),
    its path taken from :data:`pumpsync.options.RENAMED`: the code that reads the flat names goes on."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.group, self.field = RENAMED[name]

    def __get__(self, config: ClientConfig | None, owner: type | None = None) -> T:
        if config is None:  # on the class: the descriptor itself (as a property is)
            return cast(T, self)
        return cast(T, getattr(getattr(config, self.group), self.field, None))


_PLAIN = ("provider", "api_key", "url", "channels", "urls", "raise_rejections")
_GROUPS = {"timeouts": Timeouts, "retries": Retries, "limits": Limits, "network": Network, "history": History}


@dataclass(frozen=True, init=False)
class ClientConfig:
    """Every option of a client for one provider, in groups. Build it with
    :func:`pumpsync.config.make_config`, which validates; the flat names (``config.stale_timeout``)
    read the groups."""

    provider: str
    api_key: ApiKey | None = field(repr=False)  # None only for a provider that needs no key
    url: str  # the first of ``urls``
    channels: tuple[Subscription, ...]
    # Every stream URL; connection i uses urls[i % len(urls)] (one connection per node by default).
    urls: tuple[str, ...]
    raise_rejections: bool  # iteration: raise SubscriptionRejected (default: log a warning, go on)
    timeouts: Timeouts
    retries: Retries
    limits: Limits  # connections and max_frame_size resolved (never None here)
    network: Network  # auth resolved
    history: History
    options: ProviderOptions  # the provider's own (its ProviderSpec.options class)

    def __init__(
        self,
        provider: str,
        api_key: ApiKey | None,
        url: str,
        channels: tuple[Subscription, ...] = (),
        urls: tuple[str, ...] = (),
        raise_rejections: bool = False,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen: one shared default is safe
        retries: Retries = Retries(),  # noqa: B008
        limits: Limits = Limits(),  # noqa: B008
        network: Network = Network(),  # noqa: B008
        history: History = History(),  # noqa: B008
        options: ProviderOptions | None = None,
        **flat: Any,
    ) -> None:
        groups: dict[str, Any] = {"timeouts": timeouts, "retries": retries, "limits": limits, "network": network,
                                  "history": history, "options": options}  # fmt: skip
        if options is None:
            spec = REGISTRY.get(provider)
            groups["options"] = spec.options_class() if spec is not None else ProviderOptions()
        changes: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():  # the flat names (tests, code written before the groups)
            if name not in RENAMED:
                raise TypeError(f"ClientConfig() got an unexpected keyword argument {name!r}")
            group, field_ = RENAMED[name]
            changes.setdefault(group, {})[field_] = value
        for group, values in changes.items():
            groups[group] = replace(groups[group], **values)
        limits, network = groups["limits"], groups["network"]
        if limits.connections is None or limits.max_frame_size is None:
            groups["limits"] = replace(limits, connections=limits.connections or 1,
                                       max_frame_size=limits.max_frame_size or 1024 * 1024)  # fmt: skip
        if network.auth is None:
            groups["network"] = replace(network, auth="query")
        plain = {"provider": provider, "api_key": api_key, "url": url, "channels": tuple(channels),
                 "urls": tuple(urls) or (url,), "raise_rejections": raise_rejections}  # fmt: skip
        for name, value in {**plain, **groups}.items():
            object.__setattr__(self, name, value)
        remember_url(*self.urls)  # a key in a URL's path or query never reaches a log record

    # The flat names, read-only (see pumpsync.options.RENAMED): internal code reads these.
    connect_timeout = _Flat[float]()
    hello_timeout = _Flat[float]()
    ping_interval = _Flat[float]()
    pong_timeout = _Flat[float]()
    stale_timeout = _Flat[float]()
    first_connect_timeout = _Flat[float]()
    backoff_initial = _Flat[float]()
    backoff_max = _Flat[float]()
    limited_backoff = _Flat[float]()
    healthy_after = _Flat[float]()
    max_retries = _Flat[int | None]()
    connections = _Flat[int]()
    queue_size = _Flat[int]()
    dedup_size = _Flat[int]()
    max_frame_size = _Flat[int]()
    auth = _Flat[str]()
    proxy = _Flat[str | None]()
    ca_bundle = _Flat[str | None]()
    since = _Flat[int | None]()
    backfill = _Flat[bool]()
    rest_url = _Flat[str | None]()
    gap_deadline = _Flat[float]()
    # A provider's own options, None for another provider (read the provider's class in new code).
    commitment = _Flat[str | None]()
    max_gap_transactions = _Flat[int | None]()
    silent_trades_after = _Flat[float | None]()
    group = _Flat[str | None]()
    consumer = _Flat[str | None]()
    name = _Flat[str | None]()
    speed = _Flat[float | None]()

    @property
    def channel_names(self) -> list[str]:
        """The subscribed channels' names, in order."""
        return [sub.channel for sub in self.channels]

    @property
    def spec(self) -> ProviderSpec:
        """The provider's :class:`ProviderSpec` (what the core knows of it)."""
        try:
            return REGISTRY[self.provider]
        except KeyError:
            raise ConfigurationError("provider", f"{self.provider!r} is not one of {', '.join(REGISTRY)}") from None

    def url_of(self, connection: int) -> str:
        """The stream URL connection ``connection`` uses."""
        return self.urls[connection % len(self.urls)]

    def __repr__(self) -> str:
        # URLs scrubbed: a proxy URL may carry a password, a stream URL a key (in its query or its
        # path: those show as scheme and host only).
        shown = ", ".join(f"{f.name}={_shown(getattr(self, f.name))!r}" for f in fields(self) if f.repr)
        return redact(f"ClientConfig({shown})", self.api_key)


def _shown(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return safe_url(value)
    if isinstance(value, tuple) and all(isinstance(each, str) for each in value):
        return tuple(_shown(each) for each in value)
    if isinstance(value, History) and value.rest_url:
        return replace(value, rest_url=safe_url(value.rest_url))
    return value


def rest_base(config: ClientConfig) -> str:
    """The REST base for gap recovery: ``rest_url``, else the stream URL's host (ws->http, wss->https)."""
    if config.rest_url:
        return config.rest_url.rstrip("/")
    parts = urlsplit(config.url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc.rpartition('@')[2]}"


__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "REGISTRY",
    "AuthForm",
    "ClientConfig",
    "ConnectFailed",
    "EventFeed",
    "FeedFactory",
    "FrameKind",
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
    "rest_base",
]
