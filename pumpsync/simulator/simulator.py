"""The ``Simulator`` facade: one asyncio loop in one background thread, a thread-safe,
synchronous control surface for tests, benchmarks and the ``simulate`` command."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.exceptions import ProtocolError
from websockets.frames import Close

from pumpsync.simulator.anaxer import FORM_MODES, AnaxerServer, FormMode
from pumpsync.simulator.blast import Blaster
from pumpsync.simulator.connection import ConnectionInfo
from pumpsync.simulator.faults import MALFORMED_KINDS, MalformedKind, Reject, RestFailure
from pumpsync.simulator.market import EventKind, Market, MarketEvent
from pumpsync.simulator.openpump import OpenPumpServer
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.pumpportal import BAN_SECONDS, BONK_SHARE, MISLABELLED_SHARE, PumpPortalServer
from pumpsync.simulator.server import ProviderServer
from pumpsync.simulator.solana import (
    INJECT_KINDS,
    NEXT_FAULTS,
    OVERSIZED_DEFAULT,
    InjectKind,
    LayoutName,
    NextFault,
    SolanaServer,
    history_record,
    matches_channel,
)


@dataclass(frozen=True)
class ServerContext:
    """What a simulated provider's server is built from."""

    host: str
    port: int  # 0: a free port
    keys: KeyTable
    enrich_delay: float
    history_limit: int | None
    current_slot: Callable[[], int]
    # Provider-specific simulator options (``anaxer_form=...``), as given to ``Simulator(...)``.
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 1  # the simulator's seed, for servers with random draws of their own


@dataclass(frozen=True)
class SimulatedProvider:
    """One line of the simulator's registry."""

    server: Callable[[ServerContext], ProviderServer]
    path: str = "/v1/stream"  # the stream's path on the server
    rest: bool = False  # also serves the provider's REST history on the same port (``rest_url``)
    options: tuple[str, ...] = ()  # the Simulator(...) keyword options this server reads
    needs: str | None = None  # a module of an optional extra the server runs on (grpc: pumpsync[geyser])

    @property
    def available(self) -> bool:
        """The server can run here (its extra is installed)."""
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


def _openpump(ctx: ServerContext) -> ProviderServer:
    return OpenPumpServer(ctx.host, ctx.port, ctx.keys, ctx.enrich_delay, ctx.history_limit)


def _pumpportal(ctx: ServerContext) -> ProviderServer:
    return PumpPortalServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.seed,
        ctx.options.get("pumpportal_ban_seconds", BAN_SECONDS),
        ctx.options.get("pumpportal_bonk_share", BONK_SHARE),
        ctx.options.get("pumpportal_mislabelled_share", MISLABELLED_SHARE),
        ctx.history_limit,
    )


def _solana(ctx: ServerContext) -> ProviderServer:
    return SolanaServer(ctx.host, ctx.port, ctx.keys, ctx.current_slot, ctx.history_limit)


def _geyser(ctx: ServerContext) -> ProviderServer:
    from pumpsync.simulator.geyser import GeyserServer  # grpcio: the geyser extra

    return GeyserServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.current_slot,
        ctx.history_limit,
        ctx.options.get("geyser_ping_interval", 10.0),
        ctx.options.get("geyser_replay_slots", 150),
    )


def _anaxer(ctx: ServerContext) -> ProviderServer:
    return AnaxerServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.options.get("anaxer_form", "auto"),
        ctx.options.get("anaxer_ping_interval", 30.0),
        ctx.options.get("anaxer_pong_timeout", 10.0),
        ctx.current_slot,
        ctx.history_limit,
    )


# The simulator's registry: one line per simulated provider (the same names as pumpsync.providers).
SERVERS: dict[str, SimulatedProvider] = {
    "openpump": SimulatedProvider(_openpump),
    "anaxer": SimulatedProvider(
        _anaxer, rest=True, options=("anaxer_form", "anaxer_ping_interval", "anaxer_pong_timeout")
    ),
    "pumpportal": SimulatedProvider(
        _pumpportal,
        path="/api/data",
        options=("pumpportal_ban_seconds", "pumpportal_bonk_share", "pumpportal_mislabelled_share"),
    ),
    "solana": SimulatedProvider(_solana, path="/", rest=True),  # rest_url: HTTP JSON-RPC (POST)
    # gRPC on a port of its own (the server's stream_url); rest_url: the node's HTTP JSON-RPC history
    "geyser": SimulatedProvider(
        _geyser, path="", rest=True, options=("geyser_ping_interval", "geyser_replay_slots"), needs="grpc"
    ),
}
PROVIDERS = tuple(SERVERS)
# "both": the two providers the simulator first served (the default of ``pumpsync simulate``).
_BOTH = ("openpump", "anaxer")
CALL_TIMEOUT = 10.0
_MAX_BURST_SECONDS = 1.0  # after a loop hiccup, catch up at most this much market time

log = logging.getLogger("pumpsync.simulator")
T = TypeVar("T")


@dataclass(frozen=True)
class FeedProfile:
    """How one simulated provider carries the shared market: each batch of events reaches its
    clients ``delay`` seconds late (uniform in ``[low, high]``, never overtaking the previous
    batch) and each event is missing from it (stream and history alike) with probability ``loss``.
    With several providers this models a race between sources."""

    delay: tuple[float, float] = (0.0, 0.0)
    loss: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.delay
        if not 0.0 <= low <= high or not 0.0 <= self.loss < 1.0:
            raise ValueError("delay must be (low, high) with 0 <= low <= high, loss in [0, 1)")


def _providers(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        names = _BOTH if value == "both" else PROVIDERS if value == "all" else (value,)
    else:
        names = tuple(value)
    unknown = [p for p in names if p not in PROVIDERS]
    if not names or unknown:
        raise ValueError(f"providers must be a non-empty subset of {PROVIDERS}, got {value!r}")
    return tuple(p for p in PROVIDERS if p in names)


class Simulator:
    """Local provider servers (any of ``SERVERS``) fed by a deterministic market model.

    See the package docstring for keys, record shapes and fault injection.
    """

    def __init__(
        self,
        providers: str | Iterable[str] = PROVIDERS,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 20.0,
        seed: int = 1,
        keys: Mapping[str, str] | None = None,
        anaxer_form: FormMode = "auto",
        anaxer_ping_interval: float = 30.0,
        anaxer_pong_timeout: float = 10.0,
        enrich_delay: float = 0.5,
        paused: bool = False,
        history_limit: int | None = None,
        **server_options: Any,
    ) -> None:
        if rate < 0 or enrich_delay < 0 or anaxer_pong_timeout <= 0:
            raise ValueError("rate and enrich_delay must be >= 0, anaxer_pong_timeout > 0")
        if anaxer_form not in FORM_MODES:
            raise ValueError(f"anaxer_form must be one of {FORM_MODES}, got {anaxer_form!r}")
        self.providers = _providers(providers)
        self.host = host
        self.rate = float(rate)
        self.seed = seed
        self._market = Market(seed)
        self._blaster = Blaster(seed + 1_000_003)
        key_table = KeyTable(keys)
        known = {name for p in self.providers for name in SERVERS[p].options}
        unknown = sorted(set(server_options) - known)
        if unknown:
            raise ValueError(f"unknown simulator options for {self.providers}: {', '.join(unknown)}")
        options = {
            "anaxer_form": anaxer_form,
            "anaxer_ping_interval": anaxer_ping_interval,
            "anaxer_pong_timeout": anaxer_pong_timeout,
            **server_options,
        }
        self._servers: dict[str, ProviderServer] = {}
        for offset, name in enumerate(self.providers):
            context = ServerContext(
                host,
                port + offset if port else 0,
                key_table,
                enrich_delay,
                history_limit,
                lambda: self._market.current_slot,
                options,
                seed,
            )
            self._servers[name] = SERVERS[name].server(context)
        self._feeds: dict[str, FeedProfile] = {}
        self._feed_rngs: dict[str, random.Random] = {}
        self._feed_due: dict[str, float] = {}  # provider -> loop time its last delayed batch goes out
        self._feed_pending: set[asyncio.TimerHandle] = set()
        # Starting paused lets a test connect and subscribe before the first event exists.
        self._paused = paused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clock_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,), name="pumpsync-simulator", daemon=True)
        self._thread.start()
        try:
            self._call(self._astart())
        except BaseException:
            # Release whatever did start (e.g. the first port when the second is taken).
            with contextlib.suppress(Exception):
                self._call(self._astop())
            self._join_loop()
            raise
        return self

    def stop(self) -> None:
        """Close every connection with 1001 and end the background thread."""
        if self._thread is None:
            return
        try:
            self._call(self._astop())
        except Exception:
            log.exception("simulator shutdown failed")
        self._join_loop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def _join_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5.0)
        self._thread = None

    async def _astart(self) -> None:
        for server in self._servers.values():
            await server.start()
        if self.rate > 0:
            self._clock_task = asyncio.ensure_future(self._clock())

    async def _astop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
        for handle in self._feed_pending:
            handle.cancel()
        self._feed_pending.clear()
        for server in self._servers.values():
            cancel = getattr(server, "cancel_pending", None)  # servers with delayed publications
            if cancel is not None:
                cancel()
        await asyncio.gather(*(s.stop(1001, "going away") for s in self._servers.values()))

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = CALL_TIMEOUT) -> T:
        loop = self._loop
        if loop is None or self._thread is None or loop.is_closed():
            coro.close()
            raise RuntimeError("simulator is not running; call start() or use it in a with block")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # -- addresses -------------------------------------------------------------------------

    def _server(self, provider: str) -> ProviderServer:
        try:
            return self._servers[provider]
        except KeyError:
            raise ValueError(f"provider {provider!r} is not simulated (have {self.providers})") from None

    def _targets(self, provider: str | None) -> list[ProviderServer]:
        return list(self._servers.values()) if provider is None else [self._server(provider)]

    def port(self, provider: str) -> int:
        return self._server(provider).port

    def url(self, provider: str) -> str:
        stream_url = getattr(self._server(provider), "stream_url", None)  # a server whose stream is not WebSocket
        if stream_url is not None:
            return str(stream_url())
        return f"ws://{self.host}:{self.port(provider)}{SERVERS[provider].path}"

    def rest_url(self, provider: str = "anaxer") -> str:
        if not SERVERS[provider].rest:
            raise ValueError(f"the {provider} simulator has no REST API")
        return f"http://{self.host}:{self.port(provider)}"

    def client_options(self, provider: str) -> dict[str, Any]:
        """The ``Client`` options that point a client at this simulator's ``provider``."""
        options: dict[str, Any] = {"url": self.url(provider)}
        if SERVERS[provider].rest:
            options["rest_url"] = self.rest_url(provider)
        return options

    # -- market ----------------------------------------------------------------------------

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        last, budget = loop.time(), 0.0
        while True:
            await asyncio.sleep(min(0.05, 1.0 / self.rate))
            now = loop.time()
            if self._paused:
                last, budget = now, 0.0
                continue
            budget += min(now - last, _MAX_BURST_SECONDS) * self.rate
            last = now
            steps, budget = int(budget), budget - int(budget)
            if steps:
                self._publish(self._generate(steps, None))

    def _generate(self, n: int, kind: EventKind | None) -> list[MarketEvent]:
        events: list[MarketEvent] = []
        for _ in range(n):
            events.extend(self._market.step(kind))
        return events

    def _publish(self, events: list[MarketEvent]) -> None:
        for name, server in self._servers.items():
            feed = self._feeds.get(name)
            if feed is None:
                server.publish(events)
            else:
                self._publish_late(name, server, feed, events)

    def _publish_late(self, name: str, server: ProviderServer, feed: FeedProfile, events: list[MarketEvent]) -> None:
        rng = self._feed_rngs[name]
        kept = [event for event in events if rng.random() >= feed.loss] if feed.loss else events
        if not kept:
            return
        loop = asyncio.get_running_loop()
        due = max(loop.time() + rng.uniform(*feed.delay), self._feed_due.get(name, 0.0))
        self._feed_due[name] = due

        def fire() -> None:
            self._feed_pending.discard(handle)
            server.publish(kept)

        handle = loop.call_at(due, fire)
        self._feed_pending.add(handle)

    def set_feed(self, provider: str, delay: tuple[float, float] = (0.0, 0.0), loss: float = 0.0) -> None:
        """Delay and thin ``provider``'s share of the market (see :class:`FeedProfile`); the
        random choices are reproducible from the simulator's seed."""
        feed = FeedProfile((float(delay[0]), float(delay[1])), float(loss))
        self._server(provider)  # a provider this simulator serves

        def apply() -> None:
            self._feeds[provider] = feed
            self._feed_rngs.setdefault(provider, random.Random(f"{self.seed}:{provider}"))

        async def run() -> None:
            apply()

        if self._thread is None:  # before start(): no loop yet
            apply()
        else:
            self._call(run())

    def emit(self, n: int = 1, kind: EventKind | None = None) -> list[MarketEvent]:
        """Generate ``n`` market steps now and publish them; returns every event published.

        A step of ``kind`` may carry followers (a launch's creator buy, a buy's
        graduation), so the list can be longer than ``n``."""
        if kind not in (None, "launch", "trade", "graduation"):
            raise ValueError(f"kind must be None, 'launch', 'trade' or 'graduation', got {kind!r}")

        async def run() -> list[MarketEvent]:
            events = self._generate(n, kind)
            self._publish(events)
            return events

        return self._call(run())

    def pause(self) -> None:
        self._call(self._set_paused(True))

    def resume(self) -> None:
        self._call(self._set_paused(False))

    async def _set_paused(self, paused: bool) -> None:
        self._paused = paused

    # -- inspection ------------------------------------------------------------------------

    def history(self, provider: str, channel: str | None = None) -> list[dict[str, Any]]:
        """Every record ``provider`` published, in order (OpenPump: frames, ``channel`` = frame
        type; PumpPortal: frames, ``channel`` = ``txType`` or ``bonk``/``mislabelled``; Anaxer: channel
        records as REST serves them; Solana: transactions as streamed plus ``slot, blockTime, kind,
        channels``, ``channel`` one of those channels). Works after ``stop()`` too."""
        server = self._server(provider)

        if isinstance(server, SolanaServer):

            def records() -> list[dict[str, Any]]:
                return [history_record(s) for s in server.stored() if matches_channel(s, channel)]

            async def collect_records() -> list[dict[str, Any]]:
                return records()

            return self._call(collect_records()) if self._thread is not None else records()

        def texts() -> list[str]:
            if isinstance(server, (OpenPumpServer, PumpPortalServer)):  # (frame kind, JSON text) histories
                return [t for kind, t in server.history if channel is None or kind == channel]
            assert isinstance(server, AnaxerServer)
            return [t for rec, t in server.history if channel is None or rec.channel == channel]

        async def collect() -> list[str]:
            return texts()

        raw = self._call(collect()) if self._thread is not None else texts()
        return [json.loads(t) for t in raw]

    def connections(self, provider: str) -> list[ConnectionInfo]:
        """Open connections in accept order (none once stopped)."""
        server = self._server(provider)
        if self._thread is None:
            return []

        async def collect() -> list[ConnectionInfo]:
            return server.snapshots()

        return self._call(collect())

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
        """Poll ``predicate()`` until truthy and return its value; ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)

    def wait_for_connections(
        self, provider: str, n: int, subscribed: bool = False, timeout: float = 5.0
    ) -> list[ConnectionInfo]:
        """Block until ``provider`` has at least ``n`` open (and, if asked, subscribed) connections."""

        def ready() -> list[ConnectionInfo] | None:
            conns = [c for c in self.connections(provider) if c.subscribed or not subscribed]
            return conns if len(conns) >= n else None

        try:
            result: list[ConnectionInfo] = self.wait_for(ready, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{provider}: wanted {n} {'subscribed ' if subscribed else ''}connections within "
                f"{timeout} s, have {len(self.connections(provider))}"
            ) from None
        return result

    # -- benchmarks ------------------------------------------------------------------------

    def blast(
        self,
        count: int,
        provider: str | None = None,
        rate: float | None = None,
        stamp: bool = True,
        timeout: float | None = None,
    ) -> int:
        """Send ``count`` trade events to every subscribed connection of ``provider`` (None:
        all); returns the number of frames written. Not recorded in ``history``."""
        if count < 0 or (rate is not None and rate <= 0):
            raise ValueError("count must be >= 0 and rate None or > 0")
        servers = self._targets(provider)
        return self._call(self._blaster.blast(servers, count, rate, stamp), timeout)

    # -- faults ----------------------------------------------------------------------------

    def _fanout(self, provider: str | None, action: Callable[[ProviderServer], Any]) -> int:
        async def run() -> int:
            total = 0
            for server in self._targets(provider):
                result = action(server)
                total += int(await result if asyncio.iscoroutine(result) else result or 0)
            return total

        return self._call(run())

    def drop(self, provider: str | None = None, index: int | None = None) -> int:
        """Abort connections: no close frame, the TCP connection just ends."""
        return self._fanout(provider, lambda s: s.drop(index))

    def close(self, code: int, reason: str = "", provider: str | None = None, index: int | None = None) -> int:
        try:
            Close(code, reason).check()
        except ProtocolError:
            raise ValueError(f"{code} cannot be sent in a close frame") from None
        return self._fanout(provider, lambda s: s.close(code, reason, index))

    def stall(self, provider: str | None = None, index: int | None = None) -> int:
        """Half-open: send nothing to these connections and read nothing from them."""
        return self._fanout(provider, lambda s: s.stall(index, True))

    def unstall(self, provider: str | None = None, index: int | None = None) -> int:
        return self._fanout(provider, lambda s: s.stall(index, False))

    def ignore_pings(self, ignore: bool = True, provider: str | None = None) -> None:
        def apply(server: ProviderServer) -> int:
            server.ignore_pings = ignore
            return 0

        self._fanout(provider, apply)

    def send_malformed(
        self,
        kind: MalformedKind,
        provider: str | None = None,
        index: int | None = None,
        size: int = 2 * 1024 * 1024,
    ) -> int:
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}, got {kind!r}")
        return self._fanout(provider, lambda s: s.send_malformed(kind, index, size))

    def restart(self, provider: str | None = None, downtime: float = 0.0) -> None:
        """Drop every connection, stop listening, wait ``downtime``, listen again on the same
        port. Returns once listening again; the market keeps running meanwhile."""

        async def run() -> None:
            await asyncio.gather(*(s.restart(downtime) for s in self._targets(provider)))

        self._call(run(), CALL_TIMEOUT + downtime)

    def reject_next(
        self, n: int, provider: str | None = None, status: int = 503, close_code: int | None = None
    ) -> None:
        """Refuse the next ``n`` connection attempts (per provider): an HTTP ``status`` answer
        to the upgrade, or, with ``close_code``, accept and close at once."""
        reject = Reject(status, close_code)

        def apply(server: ProviderServer) -> int:
            server.rejects.extend([reject] * n)
            return 0

        self._fanout(provider, apply)

    def rest_fail_next(self, n: int, status: int = 429, retry_after: float = 1.0, provider: str = "anaxer") -> None:
        """The next ``n`` Anaxer REST requests (Solana: HTTP JSON-RPC history calls) fail with
        ``status`` (429 with Retry-After)."""
        server = self._server(provider)
        if not isinstance(server, (AnaxerServer, SolanaServer)):
            raise ValueError(f"{provider} has no HTTP API")

        async def run() -> None:
            server.rest_failures.extend([RestFailure(status, retry_after)] * n)

        self._call(run())

    # -- Solana node faults ------------------------------------------------------------------

    def _solana(self) -> SolanaServer:
        server = self._server("solana")
        assert isinstance(server, SolanaServer)
        return server

    def solana_layout(self, layout: LayoutName) -> None:
        """Event layout of every transaction from now on: ``current`` (free-sources.md),
        ``extended`` (fields appended: the next program upgrade) or ``legacy`` (the shorter
        April 2025 layouts)."""
        server = self._solana()

        async def run() -> None:
            server.set_layout(layout)

        self._call(run())

    def solana_next(self, fault: NextFault, n: int = 1, size: int = OVERSIZED_DEFAULT) -> None:
        """Alter the next ``n`` market transactions: ``truncated`` (logs cut at 10 kB with a
        ``Log truncated`` line, no ``Program data`` line left; getTransaction's inner
        instructions still carry the events) or ``oversized`` (about ``size`` bytes of extra
        log lines after the events: frames over 1 MiB)."""
        if fault not in NEXT_FAULTS or n < 0:
            raise ValueError(f"fault must be one of {NEXT_FAULTS} and n >= 0")
        server = self._solana()

        async def run() -> None:
            server.fault_next(fault, n, size)

        self._call(run())

    def solana_inject(self, kind: InjectKind, n: int = 1) -> list[str]:
        """Stream ``n`` extra transactions now (not market events); returns their signatures.
        ``failed``: a buy whose transaction failed (err set, its Program data line still in
        the logs); ``unknown_event``: an event with a discriminator outside the feed's table;
        ``undecodable``: Program data lines that are not base64 / shorter than a discriminator.
        They are in the history (getSignaturesForAddress / getTransaction) like any other."""
        if kind not in INJECT_KINDS or n < 0:
            raise ValueError(f"kind must be one of {INJECT_KINDS} and n >= 0")
        server = self._solana()

        async def run() -> list[str]:
            return server.inject(kind, n)

        return self._call(run())

    def solana_mute_subscribe(self, mute: bool = True) -> None:
        """A node that never answers ``logsSubscribe`` (no reply, no notifications)."""
        server = self._solana()

        async def run() -> None:
            server.mute_subscribe = mute

        self._call(run())

    def solana_subscribe_errors(self, n: int, code: int = 429, message: str = "Too many requests") -> None:
        """Answer the next ``n`` ``logsSubscribe`` requests with this JSON-RPC error object
        (e.g. a rate limit, or -32401 for a node that refuses a key over JSON-RPC)."""
        server = self._solana()

        async def run() -> None:
            server.subscribe_errors.extend([(code, message)] * n)

        self._call(run())

    def solana_idle_timeout(self, seconds: float | None) -> None:
        """Close (1001 "idle timeout") connections whose client sent nothing, not even a
        WebSocket ping, for ``seconds``; None (the default) never does."""
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0 or None")
        server = self._solana()

        async def run() -> None:
            server.idle_timeout = seconds

        self._call(run())

    def solana_subscribe_requests(self) -> int:
        """``logsSubscribe`` requests the node received, answered or not."""
        server = self._solana()

        async def run() -> int:
            return server.subscribe_requests

        return self._call(run())
