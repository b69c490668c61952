"""The ``Simulator`` facade: one asyncio loop in one background thread, a thread-safe,
synchronous control surface for tests, benchmarks and the ``simulate`` command (its fault
controls: :mod:`pumpsync.simulator._controls`, :mod:`pumpsync.simulator._solana_controls`;
its providers: :mod:`pumpsync.simulator._registry`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pumpsync.simulator._controls import CALL_TIMEOUT, FaultControls
from pumpsync.simulator._registry import PROVIDERS, SERVERS, ServerContext, chosen_providers
from pumpsync.simulator._solana_controls import SolanaControls
from pumpsync.simulator.anaxer import FORM_MODES, AnaxerServer, FormMode
from pumpsync.simulator.blast import Blaster
from pumpsync.simulator.connection import ConnectionInfo
from pumpsync.simulator.market import EventKind, Market, MarketEvent
from pumpsync.simulator.openpump import OpenPumpServer
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.pumpportal import PumpPortalServer
from pumpsync.simulator.server import ProviderServer
from pumpsync.simulator.solana import SolanaServer, history_record, matches_channel

__all__ = ["CALL_TIMEOUT", "PROVIDERS", "SERVERS", "FeedProfile", "Simulator"]

_MAX_BURST_SECONDS = 1.0  # after a loop hiccup, catch up at most this much market time

log = logging.getLogger("pumpsync.simulator")


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


class Simulator(FaultControls, SolanaControls):
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
        self.providers = chosen_providers(providers)
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
