"""The blocking client: threads in, a plain queue out.

A :class:`Client` is built from one engine per source (``_engine.py``: a source's connections,
dialect, supervisor, gap recovery, registry and counters): one for a provider, several for
``sources=[...]`` (``_sources.py`` plans them). The engines share one queue, one de-duplication
window and one race (``_delivery.Merge``); each reports its failure for good upward (weakly,
``_threads.upward``), and the client decides what it means for the stream. Every method works
the same with one source or many; the per-source ones (``subscribe``, ``status``) need one
source, or go to ``client.members[name]``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pumpsync._consumer import Consumer
from pumpsync._delivery import Item, Merge, SeenSet
from pumpsync._engine import Engine
from pumpsync._gaps import GapReport
from pumpsync._handoff import HandOffQueue
from pumpsync._hooks import ConnectInfo, DisconnectInfo, Hooks
from pumpsync._race import RaceTracker
from pumpsync._secrets import ApiKey
from pumpsync._sources import ConflictWarnings, Failures, Source, plan_sources, single_source, summed_stats
from pumpsync._stats import ClientStats
from pumpsync._threads import upward
from pumpsync.config import ChannelSpec, ClientConfig, make_config
from pumpsync.errors import (
    ClientClosed,
    ConfigurationError,
    PumpsyncError,
    SubscriptionRejected,
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
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import Transport

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from 3.11

log = logging.getLogger("pumpsync")
NOT_STARTED = "the client was never started: call client.start() first, or use `with client:` (connect() starts it)"

# The consumer's queue: ``queue.SimpleQueue``'s methods; items are events and, rarely, errors.
EventQueue = HandOffQueue[Item]


class Client:
    """A live stream from one provider (or several sources) over one or more redundant connections.

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

    Options (``None`` takes the default, the provider's where it has one), grouped as in
    :mod:`pumpsync.options`:

    - ``provider``: ``"openpump"``, ``"anaxer"``, ``"pumpportal"``, ``"solana"``, ``"geyser"``
      (alias ``"yellowstone"``), ``"redis"``, ``"replay"``.
    - ``api_key`` / ``api_key_file``: the key (else ``$PUMPSYNC_API_KEY``, ``$PUMPSYNC_API_KEY_FILE``,
      the systemd credential ``api_key``); providers that need none take none.
    - ``channels``: ``{"name": {filters}}`` or a list of names (providers with channels).
    - ``url``: the stream URL; a list for one connection per URL.
    - ``timeouts=Timeouts(...)``: heartbeats (``ping_interval``, ``pong``), the silence after which a
      socket counts as dead (``stale``), ``connect``, ``hello``, ``first_connect``.
    - ``retries=Retries(...)``: reconnect delays (``backoff_initial``, ``backoff_max``,
      ``limited_backoff``, ``healthy_after``) and ``limit`` [never give up].
    - ``limits=Limits(...)``: ``connections`` (redundant, each event delivered once), ``queue_size``
      (events held before the oldest are dropped, counted), ``dedup_size``, ``max_frame_size``.
    - ``network=Network(...)``: ``auth`` (where the key goes), ``ca_bundle``, ``proxy``.
    - ``history=History(...)``: gap recovery (``rest_url``, ``since``, ``backfill``, ``gap_deadline``).
    - ``options=``: the provider's own (``SolanaOptions``, ``GeyserOptions``, ``PumpPortalOptions``,
      ``RedisOptions``, ``ReplayOptions``; another provider refuses them).
    - ``raise_rejections``: iteration raises :class:`SubscriptionRejected` instead of logging it.
    - ``on_event(Event)``, ``on_connect(ConnectInfo)``, ``on_disconnect(DisconnectInfo)``,
      ``on_gap(GapReport)``: callbacks (an exception in one is logged and counted, never fatal).

    The flat keywords of earlier releases (``stale_timeout=``...) still work for one release, with a
    DeprecationWarning naming the new spelling (``pumpsync.options.RENAMED``).

    The README's option table has the details of each.

    Several sources, one stream: ``Client(sources=[Source("anaxer", api_key=K), Source("openpump",
    api_key=K2)])`` reads every source with its own connections, heartbeats, backoff and gap
    recovery, and delivers each event once, from whichever source was first; the other options
    given to ``Client`` are every source's defaults (``queue_size`` and ``dedup_size`` are the
    one queue's). A source that fails for good arrives as a :class:`SourceFailed` item and the
    others go on; :class:`AllSourcesFailed` (fatal) ends the stream when none is left.
    ``client.race`` measures the race between the sources (``race.summary()``); ``race=Race(window=...)``
    is how long, in seconds, after an event's first copy the others count as copies of it [10]. Copies
    that disagree (amounts, slot, creator) are counted per field and source pair and warned about;
    ``Race(prefer={"trade": "solana"})`` lets that source's disagreeing copy replace the one queued, if
    the consumer has not taken it yet. See docs/multi-source.md.
    """

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
        # why long: the parameter list above (one line per group) and the checks of several sources.
        self._hooks = Hooks.pop(
            {"on_event": on_event, "on_connect": on_connect, "on_disconnect": on_disconnect, "on_gap": on_gap}
        )
        given = upgrade(
            {"timeouts": timeouts, "retries": retries, "limits": limits, "network": network, "history": history,
             "race": race, "options": options},
            deprecated,
        )  # fmt: skip
        race_window, prefer = given.pop("race_window", None), given.pop("prefer", None)
        options_ = {"url": url, "api_key": api_key, "api_key_file": api_key_file, "channels": channels,
                    "raise_rejections": raise_rejections, **given}  # fmt: skip
        if sources is None:
            if race_window is not None or prefer is not None:
                raise ConfigurationError("race_window" if prefer is None else "prefer", "only with several sources")
            plan = single_source(make_config(provider, **options_))
        else:
            if provider != DEFAULT_PROVIDER:
                raise ConfigurationError("sources", "give either a provider or sources, not both")
            plan = plan_sources(sources, race_window, prefer, options_)
        self.race: RaceTracker | None = plan.race  # several sources: the race between them
        self._merge = Merge(plan.queue_size, max(plan.dedup_size, 2 * plan.queue_size), plan.race, plan.prefer)
        self.queue: EventQueue = self._merge.queue
        self._capacity = plan.queue_size
        self._several = sources is not None
        failed = upward(self._source_failed)
        self._engines: dict[str, Engine] = {
            name: Engine(config, name, self._merge, index, failed, self._hooks, name if self._several else None)
            for index, (name, config) in enumerate(plan.configs.items())
        }
        if self._several:
            for name, engine in self._engines.items():
                if engine.takers is not None:
                    raise ConfigurationError(
                        "sources", f"source {name}: its transport acknowledges what you took, which one stream of "
                        "several sources cannot tell it: use it as a client of its own",
                    )  # fmt: skip
        conflicts = ConflictWarnings(plan.race) if plan.race is not None else None
        self._consumer = Consumer(self.queue, None if self._several else self._engine().takers, conflicts)
        self.config: ClientConfig = next(iter(plan.configs.values()))  # the first source's with several
        self._lifecycle = threading.Lock()  # a leaf: guards _state
        self._state = "new"
        self._failures = Failures(len(self._engines), self._several)
        self.error: PumpsyncError | None = None

    def __repr__(self) -> str:
        if self._several:
            return f"<pumpsync.Client sources={'+'.join(self._engines)} {self._state}>"
        connections = len(self._engine().transports)
        return f"<pumpsync.Client {self.config.provider} {self._state} connections={connections}>"

    def _engine(self, what: str = "") -> Engine:
        """The one source's engine; with several, a UsageError saying to ask one of them (``what``)."""
        if len(self._engines) > 1:
            raise UsageError(f"several sources: {what} one of them, client.members[name]")
        return next(iter(self._engines.values()))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Client:
        """Open the connections (in the background); returns the client. Raises UsageError if already started."""
        with self._lifecycle:
            if self._state == "closed":
                raise UsageError("the client is closed: a closed client cannot start again, make a new one")
            if self._state != "new":
                raise UsageError("the client is already running: start() once (connect() and `with` start it)")
            self._state = "running"
        for engine in self._engines.values():
            engine.start(keepalive=self)
        if self._hooks is not None:
            self._hooks.start(self.get)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Close every connection and end every thread this client started (within ``timeout``)."""
        with self._lifecycle:
            state, self._state = self._state, "closed"
        if state == "closed":
            return
        engines = self._engines.values()
        if state == "new":  # nothing runs yet; a consumer already waiting must still hear of it
            for engine in engines:
                engine.discard()
                engine.free()
            self._merge.queue.put(ClientClosed("the client was closed"))
            return
        deadline = time.monotonic() + timeout
        self._consumer.consumed()  # closing: the consumer is done with the event in hand
        for engine in engines:  # all at once: they end in parallel
            engine.stop()
        stragglers: list[str] = []
        for engine in engines:
            left = engine.join(deadline)
            stragglers += [f"{engine.name} {what}" if self._several else what for what in left]
            if not left:
                engine.free()
        if stragglers:
            log.warning("close(): still running after %.1f s: %s", timeout, ", ".join(stragglers))
        if self.race is not None:
            self.race.finish()  # the stream has ended: decide what is still open
        self._merge.seen = SeenSet(1)  # the deliveries let go of it too: free the tables at once
        self._merge.queue.put(ClientClosed("the client was closed"))
        if self._hooks is not None and not self._hooks.stop(max(0.0, deadline - time.monotonic())):
            log.warning("close(): the hooks' thread is still running (a callback has not returned)")

    def __enter__(self) -> Client:
        if self._state != "running":  # a closed client raises UsageError here
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _source_failed(self, name: str, error: PumpsyncError) -> None:
        """A source failed for good (its engine has stopped): what that means for the stream is
        the failures' verdict (``_sources.Failures``); the consumer hears of it. Safe from any thread."""
        items = self._failures.record(name, error)
        if items:
            self.error = self._failures.error  # before the items: a consumer that sees one sees it
        for item in items:
            self.queue.put(item)

    # ------------------------------------------------------------------ consuming
    def get(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (``None``: until one comes).

        Raises the error items (see the class docs), ``queue.Empty`` on timeout, :class:`ClientClosed`
        (at once) once the client is closed, and :class:`UsageError` (at once) if it was never started.
        """
        if self._state == "new":
            raise UsageError(NOT_STARTED)
        return self._consumer.get(timeout, closed=self._state == "closed")

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

    # ------------------------------------------------------------------ subscriptions and requests
    def subscriptions(self) -> list[Subscription]:
        """The channels subscribed to now (with their filters): restored on every reconnect."""
        return [sub for engine in self._engines.values() for sub in engine.subscriptions()]

    def subscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Add (or replace) a channel at runtime; it is restored on every reconnect.

        Where the provider subscribes by keys (PumpPortal's trade channels), the keys are added to
        the channel's, and only the new ones are sent. Several sources: subscribe on one of them
        (``client.members[name].subscribe(...)``)."""
        if self._state == "closed":
            raise UsageError("the client is closed: subscribe on a new one")
        self._engine("subscribe on").subscribe(channel, filters)

    def unsubscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Stop a channel without closing the connection; with ``filters`` (PumpPortal's ``{"keys": [...]}``),
        stop only those keys (the channel goes once none is left)."""
        self._engine("unsubscribe on").unsubscribe(channel, filters)

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the provider for its stream status (providers with the ``status`` capability).

        Raises :class:`UsageError` for a provider without it, with no open connection or with
        several sources (ask one: ``client.members[name].status()``), and :class:`RequestTimeout`
        (also a ``TimeoutError``) when no answer comes in time."""
        return self._engine("ask").status(timeout)

    # ------------------------------------------------------------------ health
    @property
    def supervisor_alive(self) -> bool:
        """Every source still running has its supervisor thread (heartbeats and reconnects depend
        on it; a source that failed for good has stopped its own)."""
        alive = [e for name, e in self._engines.items() if name not in self.failed_sources]
        return bool(alive) and all(e.supervisor_alive for e in alive)

    @property
    def transports(self) -> tuple[Transport, ...]:
        """Each connection slot's transport (for metrics that a provider's transport brings along)."""
        return tuple(t for engine in self._engines.values() for t in engine.transports)

    @property
    def connected(self) -> bool:
        """At least one connection is open."""
        return any(engine.connected for engine in self._engines.values())

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
        """A source is ready: at least one of its connections is healthy (open, and something arrived
        within ``stale_timeout``) and no gap of it is being recovered (live events held, or a gap not
        yet filled: see :meth:`gaps`). With several sources, degraded is still ready.

        The supervisors' verdict (the same one ``/readyz``, sd_notify and the metrics report)."""
        return any(engine.ready for engine in self._engines.values())

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
        ``history`` (its losses and rate limits) and ``gaps``; with callbacks, ``hooks`` (``calls``,
        ``errors``, ``dropped``); with several sources, ``sources`` (each one's), ``failed``,
        ``race`` and ``conflicts_replaced``.
        The same figures are exported as Prometheus metrics (``pumpsync.metrics``).
        """
        engines = self._engines
        snapshot = self.raw_stats.snapshot()
        if self._several:
            snapshot["sources"] = {name: engine.raw_stats.snapshot() for name, engine in engines.items()}
            snapshot["failed"] = {name: str(error) for name, error in self.failed_sources.items()}
            snapshot["race"] = self.race.snapshot() if self.race is not None else None
            snapshot["conflicts_replaced"] = self._merge.replaced
        if self._hooks is not None:
            snapshot["hooks"] = self._hooks.snapshot()
        snapshot["queue_depth"] = self.queue.qsize()
        snapshot["queue_capacity"] = self._capacity
        if any(engine.has_history for engine in engines.values()):
            snapshot["history"] = self.history_stats()
            snapshot["gaps"] = dict(_summed(engine.gap_counts() for engine in engines.values()))
        return snapshot

    def gaps(self) -> list[GapReport]:
        """The gaps of late, oldest first: each one's range and outcome, and the source it is of
        (empty without history)."""
        reports = [gap for engine in self._engines.values() for gap in engine.gaps()]
        return reports if not self._several else sorted(reports, key=lambda gap: gap.opened_at)

    def history_stats(self) -> dict[str, int]:
        """The history sources' own counts (losses by reason, rate limits; several sources: summed);
        empty without one."""
        return dict(_summed(engine.history_stats() for engine in self._engines.values()))

    @property
    def raw_stats(self) -> ClientStats:
        """The live counters (read-only by convention), for the metrics collector; several sources:
        every source's summed (a copy; the connection entries are the live ones)."""
        if not self._several:
            return self._engine().raw_stats
        members = [engine.raw_stats for engine in self._engines.values()]
        return summed_stats("+".join(self._engines), self._capacity, members)

    @property
    def members(self) -> dict[str, Engine]:
        """Each source by name (one provider: just that one): its ``config``, ``stats()``,
        ``raw_stats``, ``ready``, ``gaps()``, ``history_stats()``, ``subscribe()``, ``status()``..."""
        return dict(self._engines)

    @property
    def failed_sources(self) -> dict[str, PumpsyncError]:
        """The sources that failed for good while others go on (several sources only; one
        provider that fails ends the stream: see ``error``)."""
        return self._failures.failed()

    @property
    def conflicts_replaced(self) -> int:
        """Queued copies the preferred source's disagreeing copy replaced (``prefer``)."""
        return self._merge.replaced

    def source_keys(self) -> list[ApiKey]:
        """Every source's key (for log redaction)."""
        return [e.config.api_key for e in self._engines.values() if e.config.api_key is not None]


def _summed(counts: Iterable[Mapping[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for one in counts:
        total.update(one)
    return total


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
