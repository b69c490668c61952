"""The blocking client: threads in, a plain queue out."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from pumpsync._connection import Connection, Outcome, Owner
from pumpsync._delivery import Delivery, Item
from pumpsync._endpoint import close_code_elsewhere, foreign_greeting, wrong_endpoint
from pumpsync._gaps import GapReport
from pumpsync._handoff import HandOffQueue
from pumpsync._hooks import ConnectInfo, DisconnectInfo, Hooks
from pumpsync._logsource import label_threads
from pumpsync._recovery import GapRecovery
from pumpsync._secrets import ApiKey, safe_url
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync._supervisor import Supervisor
from pumpsync._text import WarningGate, bounded_label, log_safe
from pumpsync.config import ChannelSpec, ClientConfig, make_config, parse_channels
from pumpsync.errors import (
    ClientClosed,
    ConfigurationError,
    ProviderRefused,
    PumpsyncError,
    RequestTimeout,
    SubscriptionRejected,
    ThreadFailed,
    UsageError,
)
from pumpsync.events import Event
from pumpsync.options import (
    History,
    LegacyOptions,
    Limits,
    Network,
    ProviderOptions,
    Race,
    Retries,
    Timeouts,
    upgrade,
)
from pumpsync.providers import DEFAULT_PROVIDER, ProviderName
from pumpsync.providers.base import (
    Dialect,
    Hello,
    Notice,
    Output,
    Refetch,
    Rejected,
    StatusReport,
    Subscribed,
    Subscription,
)
from pumpsync.providers.spec import Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from 3.11

    from pumpsync._race import RaceTracker
    from pumpsync._sources import Member, Source

log = logging.getLogger("pumpsync")
NOT_STARTED = "the client was never started: call client.start() first, or use `with client:` (connect() starts it)"

# The consumer's queue: ``queue.SimpleQueue``'s methods; items are events and, rarely, errors.
EventQueue = HandOffQueue[Item]


class Client:
    """A live stream from one provider over one or more redundant connections.

    Three ways to consume it: iterate (``with Client(...) as c: for event in c``), read
    ``client.queue`` / :meth:`get` from any number of threads, or give callbacks (``on_event``,
    ``on_connect``, ``on_disconnect``, ``on_gap``: run on one thread of the client's own). It
    starts with :meth:`start` (or ``with``, or :func:`pumpsync.connect`); :meth:`close` ends every
    thread it started. Calls that cannot work (never started, started twice, closed) raise
    :class:`UsageError` at once.

    ``client.queue`` (an :data:`EventQueue`) is a thread-safe queue with ``queue.SimpleQueue``'s
    methods (``get``, ``get_nowait``, ``put``, ``qsize``, ``empty``; ``queue.Empty`` on timeout).
    Its items are :class:`~pumpsync.Event` objects and, rarely, :class:`~pumpsync.errors.PumpsyncError`
    instances: a :class:`SubscriptionRejected` (the other channels go on), a fatal error
    (the last item), or :class:`ClientClosed` once :meth:`close` has run. :meth:`get` and
    iteration raise those for you.

    Options (``None`` takes the default, the provider's where it has one):

    - ``provider``: ``"openpump"``, ``"anaxer"``, ``"pumpportal"``, ``"solana"``, ``"redis"``, ``"replay"``.
    - ``api_key`` / ``api_key_file``: the key (else ``$PUMPSYNC_API_KEY``, ``$PUMPSYNC_API_KEY_FILE``,
      the systemd credential ``api_key``); providers that need none take none.
    - ``channels``: ``{"name": {filters}}`` or a list of names (providers with channels).
    - ``url``: the stream URL; a list for one connection per URL. ``connections``: redundant
      connections [1], each event delivered once.
    - ``auth``: where the key goes (``"query"``, ``"header"``...). ``ca_bundle``, ``proxy``
      (``http://``, ``socks5://``), ``max_frame_size``.
    - ``ping_interval`` [30], ``pong_timeout`` [10], ``stale_timeout`` [60]: heartbeats, and the
      silence after which a socket counts as dead. ``backoff_initial`` [0.5], ``backoff_max``
      [30], ``limited_backoff``, ``healthy_after``: reconnect delays. ``connect_timeout``,
      ``hello_timeout``, ``first_connect_timeout`` [60], ``max_retries`` [never].
    - ``queue_size`` [100000]: events held before the oldest are dropped (counted). ``dedup_size``.
    - ``raise_rejections``: iteration raises :class:`SubscriptionRejected` instead of logging it.
    - ``rest_url``, ``since`` (start with history from this slot), ``backfill``: gap recovery
      (providers with history).
    - Only some providers' (their ``SPEC.options``; another provider refuses them): ``commitment``,
      ``max_gap_transactions`` (solana), ``silent_trades_after`` (pumpportal), ``group``,
      ``consumer``, ``name`` (redis), ``speed`` (replay).
    - ``on_event(Event)``, ``on_connect(ConnectInfo)``, ``on_disconnect(DisconnectInfo)``,
      ``on_gap(GapReport)``: callbacks (an exception in one is logged and counted, never fatal).

    The README's option table has the details of each.

    Several sources, one stream: ``Client(sources=[Source("anaxer", api_key=K), Source("openpump",
    api_key=K2)])`` reads every source with its own connections, heartbeats, backoff and gap
    recovery, and delivers each event once, from whichever source was first; the other options
    given to ``Client`` are every source's defaults (``queue_size`` and ``dedup_size`` are the
    one queue's). A source that fails for good arrives as a :class:`SourceFailed` item and the
    others go on; :class:`AllSourcesFailed` (fatal) ends the stream when none is left.
    ``race`` measures the race between the sources (``race.summary()``); ``race_window`` is how
    long, in seconds, after an event's first copy the others count as copies of it [10]. Copies that
    disagree (amounts, slot, creator) are counted per field and source pair and warned about;
    ``prefer={"trade": "solana"}`` lets that source's disagreeing copy replace the one queued, if the
    consumer has not taken it yet. See docs/multi-source.md.
    """

    def __new__(cls, *args: Any, sources: Sequence[Source] | None = None, **kwargs: Any) -> Client:
        if sources is not None and cls is Client:
            from pumpsync._sources import MultiClient

            return super().__new__(MultiClient)
        return super().__new__(cls)

    def __init__(
        self,
        provider: ProviderName = DEFAULT_PROVIDER,
        *,
        url: str | Sequence[str] | None = None,
        api_key: str | ApiKey | None = None,
        api_key_file: str | os.PathLike[str] | None = None,
        channels: ChannelSpec | None = None,
        sources: Sequence[Source] | None = None,
        # Option groups (pumpsync.options; None: every default), and the provider's own options:
        timeouts: Timeouts | None = None,
        retries: Retries | None = None,
        limits: Limits | None = None,
        network: Network | None = None,
        history: History | None = None,
        race: Race | None = None,
        options: ProviderOptions | None = None,
        raise_rejections: bool | None = None,
        # Callbacks, run on one thread of their own (see pumpsync._hooks and the README):
        on_event: Callable[[Event], Any] | None = None,
        on_connect: Callable[[ConnectInfo], Any] | None = None,
        on_disconnect: Callable[[DisconnectInfo], Any] | None = None,
        on_gap: Callable[[GapReport], Any] | None = None,
        **deprecated: Unpack[LegacyOptions],  # the flat keywords before the groups (pumpsync.options.RENAMED)
    ) -> None:
        self._hooks = Hooks.pop(
            {"on_event": on_event, "on_connect": on_connect, "on_disconnect": on_disconnect, "on_gap": on_gap}
        )
        given = upgrade(
            {"timeouts": timeouts, "retries": retries, "limits": limits, "network": network, "history": history,
             "race": race, "options": options},
            deprecated,
        )  # fmt: skip
        race_window, prefer = given.pop("race_window", None), given.pop("prefer", None)
        self.config: ClientConfig = make_config(
            provider,
            api_key=api_key,
            api_key_file=api_key_file,
            channels=channels,
            url=url,
            raise_rejections=raise_rejections,
            **given,
        )
        if race_window is not None or prefer is not None:  # Client.__new__ made a MultiClient with sources
            raise ConfigurationError("race_window" if prefer is None else "prefer", "only with several sources")
        if sources is not None:
            raise ConfigurationError("sources", "only pumpsync.Client itself takes sources")
        self._assemble(None)

    @classmethod
    def _member(cls, config: ClientConfig, member: Member) -> Client:
        """One source's client inside a multi-source client (see ``pumpsync._sources``)."""
        client = object.__new__(Client)
        client.config = config
        client._hooks = member.hooks  # the multi-source client's: it runs them
        client._assemble(member)
        return client

    def _assemble(self, member: Member | None) -> None:
        config = self.config
        spec = config.spec
        self._member_of = member
        self._label = member.name if member else config.provider  # names the source in logs and hooks
        self.race: RaceTracker | None = None  # a multi-source client's race between its sources
        connection_stats = [ConnectionStats(i) for i in range(config.connections)]
        self._stats = ClientStats(member.name if member else config.provider, config.queue_size, connection_stats)
        self._notice_gate = WarningGate()
        dedup_size = max(config.dedup_size, 2 * config.queue_size)
        if member is None:
            self._delivery = Delivery(self._stats, config.queue_size, dedup_size)
        else:  # one queue, one de-duplication window for every source
            self._delivery = Delivery(
                self._stats, config.queue_size, dedup_size, member.merge, member.index, config.provider, member.name
            )
        self.queue: EventQueue = self._delivery.queue
        # Lock order (docs/architecture.md): _registry_lock (writers only) -> Connection._lock ->
        # the transport's own write lock. The registry is copy-on-write: a writer publishes a new
        # read-only mapping; readers (a reconnecting connection, the recovery) take it without a lock.
        self._registry_lock = threading.Lock()
        self._registry: Mapping[str, Subscription] = MappingProxyType({sub.channel: sub for sub in config.channels})
        self._rejected: frozenset[str] = frozenset()
        self._hub = _Hub(self)
        dialect_options = {name: getattr(config, name) for name in spec.dialect.config_options}
        dialect_factory = functools.partial(spec.dialect, **dialect_options) if dialect_options else spec.dialect
        self._connections = [
            Connection(i, config, dialect_factory, self._delivery, connection_stats[i], self._hub)
            for i in range(config.connections)
        ]
        # Transports that want to know what the consumer took (the redis source commits on it).
        takers = [getattr(conn.transport, "taken", None) for conn in self._connections]
        self._takers: list[Callable[[Event | None], None] | None] | None = takers if any(takers) else None
        self._recovery = (
            GapRecovery(
                config,
                spec.history(config),
                self._delivery,
                self._stats,
                self.subscriptions,
                on_gap=None if self._hooks is None else functools.partial(self._hooks.notify, "on_gap"),
            )
            if spec.history is not None
            else None
        )
        watched: list[tuple[str, Callable[[], bool]]] = [
            ("connection", functools.partial(_alive, conn)) for conn in self._connections
        ]
        if self._recovery is not None:
            watched.append(("backfill", functools.partial(_alive, self._recovery)))
        self._supervisor = Supervisor(config, self._connections, self._fail, watched, self._thread_failed)
        # Every log line from this client's threads names its source (see pumpsync._logsource).
        label_threads(
            member.name if member else config.provider,
            *(conn._thread for conn in self._connections),
            self._supervisor._thread,
            None if self._recovery is None else self._recovery._thread,
        )
        self._status_lock = threading.Lock()
        self._status_reply: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._lifecycle = threading.Lock()
        self._state = "new"
        self.error: PumpsyncError | None = None

    def __repr__(self) -> str:
        return f"<pumpsync.Client {self.config.provider} {self._state} connections={len(self._connections)}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Client:
        """Open the connections (in the background); returns the client. Raises UsageError if already started."""
        self._mark_running()
        for conn in self._connections:
            conn.start()
        if self._recovery is not None:
            self._recovery.start()
        self._supervisor.start()
        if self._hooks is not None and self._member_of is None:
            self._hooks.start(self)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Close every connection and end every thread this client started (within ``timeout``)."""
        state = self._mark_closed()
        if state == "closed":
            return
        if state == "new":  # nothing runs yet; a consumer already waiting must still hear of it
            if self._recovery is not None:
                self._recovery.source.close()
            if self._member_of is None:
                self._delivery.fail(ClientClosed("the client was closed"))
            self._detach()
            return
        deadline = time.monotonic() + timeout
        self._supervisor.stop()
        for conn in self._connections:
            conn.stop()
        if self._recovery is not None:
            self._recovery.stop()

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        stragglers = [] if self._supervisor.join(remaining()) else ["supervisor"]
        stragglers += [f"connection {c.index}" for c in self._connections if not c.join(remaining())]
        if self._recovery is not None and not self._recovery.join(remaining()):
            stragglers.append("backfill")
        if stragglers:
            log.warning("close(): still running after %.1f s: %s", timeout, ", ".join(stragglers))
        if self._member_of is None:  # a source's client: the multi-source client says it once
            self._delivery.fail(ClientClosed("the client was closed"))
            if self._hooks is not None and not self._hooks.stop(remaining()):
                stragglers.append("hooks")
        if not stragglers:
            self._detach()

    def _detach(self) -> None:
        """Free what a closed client no longer needs at once: the de-duplication tables, and the
        reference cycles through its parts (so that dropping the client frees it, its queue's
        sockets included, without waiting for the cyclic garbage collector)."""
        self._delivery.free()
        self._hub.detach()
        self._supervisor.detach()
        if self._recovery is not None:
            self._recovery.detach()

    def _mark_running(self) -> None:
        with self._lifecycle:
            if self._state == "closed":
                raise UsageError("the client is closed: a closed client cannot start again, make a new one")
            if self._state != "new":
                raise UsageError("the client is already running: start() once (connect() and `with` start it)")
            self._state = "running"

    def _mark_closed(self) -> str:
        """Mark the client closed; the state it was in."""
        with self._lifecycle:
            state, self._state = self._state, "closed"
        return state

    def __enter__(self) -> Client:
        if self._state != "running":  # a closed client raises UsageError here
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ consuming
    def get(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (``None``: until one comes).

        Raises the error items (see the class docs), ``queue.Empty`` on timeout, :class:`ClientClosed`
        (at once) once the client is closed, and :class:`UsageError` (at once) if it was never started.
        """
        if self._state == "new":
            raise UsageError(NOT_STARTED)
        takers = self._takers
        if takers is not None:  # asking for the next event: the consumer is done with the one in hand
            for taken in takers:
                if taken is not None:
                    taken(None)
        if self._state == "closed":  # what is left, then ClientClosed: never a wait on a closed client
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
        if takers is not None:
            taken = takers[item.connection]
            if taken is not None:
                taken(item)
        return item

    def __iter__(self) -> Iterator[Event]:
        """Events until :meth:`close`; raises fatal errors. A refused channel is logged as a warning
        and the others go on (``raise_rejections=True``: raises :class:`SubscriptionRejected`).
        A client never started raises :class:`UsageError` here, at once."""
        if self._state == "new":  # checked before the first next(): an unstarted client would wait forever
            raise UsageError(NOT_STARTED)
        return self._events()

    def _events(self) -> Iterator[Event]:
        while True:
            try:
                yield self.get()
            except ClientClosed:
                return
            except SubscriptionRejected:
                if self.config.raise_rejections:
                    raise  # the warning was logged when the refusal arrived

    def raise_for_error(self) -> None:
        """Raise the fatal error that stopped the client, if any."""
        if self.error is not None:
            raise self.error

    # ------------------------------------------------------------------ subscriptions
    def subscriptions(self) -> list[Subscription]:
        """The channels subscribed to now (with their filters): restored on every reconnect."""
        return list(self._registry.values())  # a snapshot: the mapping is never changed, only replaced

    def subscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Add (or replace) a channel at runtime; it is restored on every reconnect.

        Where the provider subscribes by keys (PumpPortal's trade channels), the keys are added to
        the channel's, and only the new ones are sent."""
        if self._state == "closed":
            raise UsageError("the client is closed: subscribe on a new one")
        (sub,) = parse_channels(self.config.provider, {channel: filters})
        with self._registry_lock:
            self._registry = MappingProxyType(
                {**self._registry, channel: self.config.spec.dialect.merge(self._registry.get(channel), sub)}
            )
            self._rejected = self._rejected - {channel}
        self._sync(channel)

    def unsubscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Stop a channel without closing the connection; with ``filters`` (PumpPortal's ``{"keys": [...]}``),
        stop only those keys (the channel goes once none is left)."""
        with self._registry_lock:
            old = self._registry.get(channel)
            if old is None:
                raise UsageError(f"not subscribed to {channel!r}")
            rest = self.config.spec.dialect.remove(old, filters)
            registry = {**self._registry}
            if rest is None:
                del registry[channel]
            else:
                registry[channel] = rest
            self._registry = MappingProxyType(registry)
        self._sync(channel)

    def _sync(self, channel: str) -> None:
        """Bring every connection's dialect to the registry's current entry for ``channel``.

        Outside the registry lock (no lock is held across a send). Each connection applies the
        entry it reads under its own lock, so whichever writer comes last leaves the latest state,
        and a session opening meanwhile reads the registry under that same lock."""
        for conn in self._connections:
            conn.with_dialect(functools.partial(_apply, self, channel))

    # ------------------------------------------------------------------ requests
    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the provider for its stream status (providers with the ``status`` capability).

        Raises :class:`UsageError` for a provider without it or with no open connection, and
        :class:`RequestTimeout` (also a ``TimeoutError``) when no answer comes in time."""
        if "status" not in self.config.spec.capabilities:
            raise UsageError(f"{self.config.provider} has no status request")
        with self._status_lock:
            conn = next((c for c in self._connections if c.is_open), None)
            if conn is None:
                raise UsageError("no open connection to ask (wait until client.connected)")
            while not self._status_reply.empty():
                self._status_reply.get_nowait()
            if not conn.with_dialect(_status_request):
                raise UsageError("could not send the status request (the connection just closed)")
            try:
                return self._status_reply.get(timeout=timeout)
            except queue.Empty:
                raise RequestTimeout(f"no status reply within {timeout} s") from None

    # ------------------------------------------------------------------ health
    @property
    def supervisor_alive(self) -> bool:
        """The supervisor thread runs (for watchdogs: heartbeats and reconnects depend on it)."""
        return self._supervisor.alive

    @property
    def transports(self) -> tuple[Transport, ...]:
        """Each connection slot's transport (for metrics that a provider's transport brings along)."""
        return tuple(c.transport for c in self._connections)

    @property
    def connected(self) -> bool:
        """At least one connection is open."""
        return any(c.is_open for c in self._connections)

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until a connection is open (True), or ``timeout`` seconds pass or the client stops (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.connected:
            if self.error is not None or self._state == "closed":
                return False
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.02 if left is None else min(0.02, left))  # polled: no connection event to wait on
        return True

    @property
    def ready(self) -> bool:
        """At least one connection is healthy: open, and something arrived within ``stale_timeout``;
        and no gap is being recovered (live events held, or a gap not yet filled: see :meth:`gaps`).

        The supervisor's verdict (the same one ``/readyz``, sd_notify and the metrics report)."""
        return self._supervisor.ready and (self._recovery is None or self._recovery.settled)

    def stats(self) -> dict[str, Any]:
        """The counters, as a JSON-ready dict (a copy: safe to keep, print or serialise).

        ``provider`` (the source's name), ``delivered`` (events put on the queue), ``duplicates``
        (copies from redundant connections or sources, dropped), ``dropped`` (lost to a full
        queue), ``events`` (delivered, by kind), ``backfill`` (gap recovery's ``requests``,
        ``events``, ``failures``), ``rejected`` (refused channels), ``queue_depth`` and
        ``queue_capacity``; ``connections``, one dict per connection: ``index``, ``state``,
        ``attempts``, ``connects``, ``disconnects`` (by reason and close code), ``frames``,
        ``malformed`` and ``filtered`` (by reason), ``down_seconds``, ``down``, ``pings_sent``,
        ``pongs``, ``first_deliveries``, ``state_since``, ``last_frame_at``, ``last_event_at``
        (epoch seconds) and ``last_rtt`` (heartbeat round trip, seconds). With a history,
        ``history`` (its losses and rate limits); with callbacks, ``hooks`` (``calls``, ``errors``,
        ``dropped``); with several sources, ``sources`` (each one's), ``failed`` and ``race``.
        The same figures are exported as Prometheus metrics (``pumpsync.metrics``).
        """
        snapshot = self._stats.snapshot()
        if self._hooks is not None:
            snapshot["hooks"] = self._hooks.snapshot()
        snapshot["queue_depth"] = self.queue.qsize()
        snapshot["queue_capacity"] = self.config.queue_size
        if self._recovery is not None:
            snapshot["history"] = self.history_stats()
            snapshot["gaps"] = self._recovery.gap_counts()
        return snapshot

    def gaps(self) -> list[GapReport]:
        """The gaps of late, oldest first: each one's range and outcome (empty without history)."""
        return [] if self._recovery is None else self._recovery.gaps()

    def history_stats(self) -> dict[str, int]:
        """The history source's own counts (losses by reason, rate limits); empty without one."""
        return {} if self._recovery is None else self._recovery.source_stats()

    @property
    def raw_stats(self) -> ClientStats:
        """The live counters (read-only by convention), for the metrics collector."""
        return self._stats

    @property
    def members(self) -> dict[str, Client]:
        """Each source's own client by name: here the one provider, this client itself."""
        return {self._stats.provider: self}

    @property
    def failed_sources(self) -> dict[str, PumpsyncError]:
        """The sources that failed for good while others go on (several sources only; one
        provider that fails ends the stream: see ``error``)."""
        return {}

    def _reject(self, output: Rejected) -> None:
        channel = output.error.channel
        with self._registry_lock:
            known = channel not in self._rejected and channel in self._registry
            if known:
                self._rejected = self._rejected | {channel}
                self._registry = MappingProxyType({k: v for k, v in self._registry.items() if k != channel})
        if not known:
            # One report per channel, however many connections were refused; and only for a
            # channel we asked for (a server may name any others, as often as it likes).
            log.debug("ignored a rejection of %r: not subscribed", channel)
            return
        self._stats.rejected[channel] += 1
        log.warning("%s", output.error)
        self._delivery.fail(output.error)

    def _thread_failed(self, kind: str, detail: str) -> None:
        """One of this client's threads ended unexpectedly: counted, and the client fails loudly
        (``ready`` goes False, the consumer gets a fatal :class:`ThreadFailed`)."""
        self._stats.thread_failures[kind] += 1
        self._fail(
            ThreadFailed(f"internal error: the {kind} thread ended unexpectedly ({detail}); please report it", kind)
        )

    def _fail(self, error: PumpsyncError) -> None:
        """A fatal error: stop everything, tell the consumer. Safe from any thread."""
        with self._lifecycle:
            if self.error is not None:
                return
            self.error = error
        # The CLI prints a fatal error itself (see setup_logging); the end of a replay is no error.
        log.log(
            logging.INFO if isinstance(error, ClientClosed) else logging.ERROR,
            "%s",
            error,
            extra={"pumpsync_fatal": True},
        )
        self._supervisor.stop()
        for conn in self._connections:
            conn.stop()
        member = self._member_of
        if member is None:
            self._delivery.fail(error)
        else:  # one source failed: the multi-source client reports it and decides if that is the end
            member.failed(member, error)


# IDEs and inspect.signature(Client) show __init__'s options, not the __new__ that picks the class.
_INIT = inspect.signature(Client.__init__)
setattr(Client, "__signature__", _INIT.replace(parameters=list(_INIT.parameters.values())[1:]))  # noqa: B010


class _Hub(Owner):
    """Where the connection threads report (sessions opening and ending, non-event outputs):
    the one place those are dispatched. Private, so that ``Client``'s public surface is the API."""

    def __init__(self, client: Client) -> None:
        self._client: Client = client

    def detach(self) -> None:
        """The client is closed and its threads have ended: drop the reference back to it."""
        del self._client

    def subscriptions(self) -> list[Subscription]:
        return self._client.subscriptions()

    def session_opened(self, conn: Connection) -> None:
        client = self._client
        client._supervisor.wake()
        hooks = client._hooks
        if hooks is not None:
            now = time.time()
            url = safe_url(client.config.url_of(conn.index))
            hooks.notify("on_connect", ConnectInfo(client._label, conn.index, url, conn.sessions > 1))
            since = hooks.came_back(client._label)
            # The whole source was down: what was sent meanwhile is missing. A source with history
            # reports its gap from the recovery (recovered, partial or lost); one without, here.
            if since is not None and client._recovery is None:
                detail = f"no connection of {client._label} was open for {now - since:.1f} s"
                gap = GapReport(
                    0, client.config.provider, None, since, "lost", closed_at=now, reason=detail, source=client._label
                )
                hooks.notify("on_gap", gap)
        recovery = client._recovery
        if recovery is not None:
            # After an outage of the whole client (no other connection kept the stream).
            resumed = conn.sessions > 1 and not any(c.is_open and c is not conn for c in client._connections)
            recovery.session_opened(conn.index, resumed)

    def session_ended(self, conn: Connection, outcome: Outcome) -> None:
        client = self._client
        hooks = client._hooks
        if hooks is not None:
            info = DisconnectInfo(client._label, conn.index, outcome.reason, outcome.code, outcome.detail or "")
            hooks.notify("on_disconnect", info)
            if not any(c.is_open and c is not conn for c in client._connections):
                hooks.went_down(client._label, time.time())
        client._stats.connections[conn.index].disconnects[(outcome.reason, str(outcome.code or ""))] += 1
        if outcome.reason == "internal_error":  # a session died of a bug of ours: counted, and the slot reconnects
            client._stats.thread_failures["connection"] += 1
        if client._recovery is not None:
            client._recovery.session_ended(conn.index)
        if outcome.refusal is not None:
            conn.stats.set_state("failed")
            client._fail(_with_endpoint_hint(outcome.refusal))
            return
        client._supervisor.session_ended(conn, outcome)

    def control(self, conn: Connection, output: Output) -> None:
        client = self._client
        if isinstance(output, StatusReport):
            client._status_reply.put(output.data)
        elif isinstance(output, Subscribed):
            log.info("connection %d: subscribed to %s", conn.index, output.channel)
            if client._recovery is not None:
                client._recovery.channel_live(conn.index, output.channel)
        elif isinstance(output, Rejected):
            client._reject(output)
            if client._recovery is not None:
                client._recovery.channel_live(conn.index, output.error.channel)
        elif isinstance(output, Refetch):
            # Without a source that can fetch one item, the loss stays counted (the dialect's Malformed).
            if client._recovery is not None:
                client._recovery.refetch(output.key, output.slot)
        elif isinstance(output, Notice):
            # Codes and texts are the provider's: bounded in number, escaped, and not one log line each.
            code = bounded_label(client._stats.notices, log_safe(output.code, 64))
            client._stats.notices[code] += 1
            held = client._notice_gate.allow(code)
            if held is not None:
                log.warning(
                    "connection %d: %s reports %s: %s%s",
                    conn.index,
                    client.config.provider,
                    code,
                    log_safe(output.message),
                    f" ({held} more of these in the last minute, not logged)" if held else "",
                )
        elif isinstance(output, Hello):
            log.debug("connection %d: greeted by %s", conn.index, client.config.provider)
            other = foreign_greeting(client.config.provider, output.info)
            if other is not None:  # another provider's stream: retrying the same URL cannot help
                url = client.config.url_of(conn.index)
                message = wrong_endpoint(client.config.provider, other, url)
                client._fail(ProviderRefused(message, provider=client.config.provider, error_code="wrong_endpoint"))


def _with_endpoint_hint(refusal: PumpsyncError) -> PumpsyncError:
    """A refusal by close code, with what the code means to other providers where that differs
    (OpenPump's 4001 is a plan refusal, Anaxer's a bad key: the URL may be the other's)."""
    if not isinstance(refusal, ProviderRefused):
        return refusal
    hint = close_code_elsewhere(refusal.provider, refusal.close_code)
    if not hint:
        return refusal
    return type(refusal)(
        f"{refusal}{hint}", provider=refusal.provider, close_code=refusal.close_code, error_code=refusal.error_code
    )


def _alive(worker: Connection | GapRecovery) -> bool:
    return worker.alive


def _apply(client: Client, channel: str, dialect: Dialect) -> list[str]:
    """The frames that bring ``dialect`` to the registry's entry for ``channel`` (run under the connection's lock)."""
    want = client._registry.get(channel)
    have = dialect.subscriptions.get(channel)
    if want == have:
        return []
    if want is None:
        return dialect.unsubscribe(channel)
    frames = dialect.unsubscribe(channel) if have is not None and not dialect.diffs else []
    return frames + dialect.subscribe(want)


def _status_request(dialect: Dialect) -> list[str]:
    frame = dialect.status_request()
    if frame is None:
        raise PumpsyncError(f"{dialect.provider} has no status request")
    return [frame]


def connect(
    provider: ProviderName | None = None,
    *,
    url: str | Sequence[str] | None = None,
    api_key: str | ApiKey | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
    channels: ChannelSpec | None = None,
    sources: Sequence[Source] | None = None,
    timeouts: Timeouts | None = None,
    retries: Retries | None = None,
    limits: Limits | None = None,
    network: Network | None = None,
    history: History | None = None,
    race: Race | None = None,
    options: ProviderOptions | None = None,
    raise_rejections: bool | None = None,
    on_event: Callable[[Event], Any] | None = None,
    on_connect: Callable[[ConnectInfo], Any] | None = None,
    on_disconnect: Callable[[DisconnectInfo], Any] | None = None,
    on_gap: Callable[[GapReport], Any] | None = None,
    **deprecated: Unpack[LegacyOptions],
) -> Client:
    """Start a :class:`Client` with these options (see :class:`Client`); use it as a context
    manager and iterate over it. ``provider`` defaults to OpenPump unless ``sources`` are given."""
    given = {key: value for key, value in locals().items() if key not in ("provider", "deprecated")}
    given.update(deprecated)  # Client warns, at the caller's line (the first outside pumpsync)
    if sources is None:
        given.pop("sources")
        return Client(provider or DEFAULT_PROVIDER, **given).start()
    if provider is not None:
        raise ConfigurationError("sources", "give either a provider or sources, not both")
    given = {key: value for key, value in given.items() if value is not None}
    return Client(**given).start()


__all__ = ["Client", "EventQueue", "connect"]
